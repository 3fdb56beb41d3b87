package ollama

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/ollama/ollama/types/model"
)

// The media types of the layers this package reads.
const (
	mediaTypeModel     = "application/vnd.ollama.image.model"
	mediaTypeTemplate  = "application/vnd.ollama.image.template"
	mediaTypeSystem    = "application/vnd.ollama.image.system"
	mediaTypeParams    = "application/vnd.ollama.image.params"
	mediaTypeLicense   = "application/vnd.ollama.image.license"
	mediaTypeProjector = "application/vnd.ollama.image.projector"
	mediaTypeAdapter   = "application/vnd.ollama.image.adapter"
)

// Limits on what is read into memory: manifests, and the text layers
// (template, system prompt, params, license) and the config blob.
const (
	maxManifestSize = 1 << 20
	maxTextSize     = 8 << 20
)

// manifest is an Ollama image manifest (OCI / Docker schema 2).
type manifest struct {
	SchemaVersion int     `json:"schemaVersion"`
	MediaType     string  `json:"mediaType"`
	Config        layer   `json:"config"`
	Layers        []layer `json:"layers"`
}

// layer is one entry of a manifest: a blob and what it holds.
type layer struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
}

// load reads the manifest at path, the manifest of n in the store at root,
// and builds its Model.
func load(root string, n model.Name, path string) (*Model, error) {
	raw, fi, err := readLimited(path, maxManifestSize)
	if err != nil {
		return nil, fmt.Errorf("read manifest: %w", err)
	}
	var man manifest
	if err := json.Unmarshal(raw, &man); err != nil {
		return nil, fmt.Errorf("parse manifest %s: %w", path, err)
	}
	if man.SchemaVersion != 2 {
		return nil, fmt.Errorf("manifest %s: schemaVersion %d, want 2", path, man.SchemaVersion)
	}
	sum := sha256.Sum256(raw)
	m := &Model{
		Name:       n.DisplayShortest(),
		FullName:   n.String(),
		Digest:     hex.EncodeToString(sum[:]),
		Size:       man.Config.Size,
		ModifiedAt: fi.ModTime(),
	}

	blobs := filepath.Join(root, "blobs")
	var remote string
	if man.Config.Digest != "" {
		cfg, err := readText(blobs, man.Config, "config")
		if err != nil {
			return nil, err
		}
		var c model.ConfigV2
		if err := json.Unmarshal([]byte(cfg), &c); err != nil {
			return nil, fmt.Errorf("parse config blob %s: %w", man.Config.Digest, err)
		}
		m.Details = Details{
			Format:            c.ModelFormat,
			Family:            c.ModelFamily,
			Families:          c.ModelFamilies,
			ParameterSize:     c.ModelType,
			QuantizationLevel: c.FileType,
		}
		remote = c.RemoteHost
	}

	models := 0
	for i, l := range man.Layers {
		if l.Size < 0 {
			return nil, fmt.Errorf("manifest %s: layer %d has negative size %d", path, i, l.Size)
		}
		m.Size += l.Size
		switch l.MediaType {
		case mediaTypeModel:
			models++
			if m.ModelPath, err = blobFile(blobs, l, "model"); err != nil {
				return nil, err
			}
			m.ModelDigest = l.Digest
		case mediaTypeProjector:
			p, err := blobFile(blobs, l, "projector")
			if err != nil {
				return nil, err
			}
			m.ProjectorPaths = append(m.ProjectorPaths, p)
		case mediaTypeAdapter:
			p, err := blobFile(blobs, l, "adapter")
			if err != nil {
				return nil, err
			}
			m.AdapterPaths = append(m.AdapterPaths, p)
		case mediaTypeTemplate:
			if m.Template, err = readText(blobs, l, "template"); err != nil {
				return nil, err
			}
		case mediaTypeSystem:
			if m.System, err = readText(blobs, l, "system"); err != nil {
				return nil, err
			}
		case mediaTypeParams:
			params, err := readText(blobs, l, "params")
			if err != nil {
				return nil, err
			}
			if !json.Valid([]byte(params)) {
				return nil, fmt.Errorf("params blob %s is not valid JSON", l.Digest)
			}
			m.Params = []byte(params)
		case mediaTypeLicense:
			license, err := readText(blobs, l, "license")
			if err != nil {
				return nil, err
			}
			m.Licenses = append(m.Licenses, license)
		}
	}
	switch {
	case models == 0 && remote != "":
		return nil, fmt.Errorf("manifest %s is a cloud model served by %s; it has no local weights", path, remote)
	case models == 0:
		return nil, fmt.Errorf("manifest %s has no layer of type %s", path, mediaTypeModel)
	case models > 1:
		return nil, fmt.Errorf("manifest %s has %d layers of type %s, want one", path, models, mediaTypeModel)
	}
	return m, nil
}

// blobPath returns the path of the blob with the given digest, which must
// be "sha256:" or "sha256-" followed by 64 hex digits.
func blobPath(blobs, digest string) (string, error) {
	hexPart, ok := strings.CutPrefix(digest, "sha256:")
	if !ok {
		hexPart, ok = strings.CutPrefix(digest, "sha256-")
	}
	if !ok || len(hexPart) != 64 || strings.IndexFunc(hexPart, notHex) >= 0 {
		return "", fmt.Errorf("invalid blob digest %q: want sha256:<64 hex digits>", digest)
	}
	p := filepath.Join(blobs, "sha256-"+hexPart)
	if !within(blobs, p) { // cannot happen for a hex name; kept as the last line of defence
		return "", fmt.Errorf("blob digest %q names a path outside the store", digest)
	}
	return p, nil
}

func notHex(r rune) bool {
	return !('0' <= r && r <= '9' || 'a' <= r && r <= 'f' || 'A' <= r && r <= 'F')
}

// blobFile returns the path of the blob of l, a layer holding what, after
// checking that it is a regular file of the size the manifest gives.
func blobFile(blobs string, l layer, what string) (string, error) {
	p, err := blobPath(blobs, l.Digest)
	if err != nil {
		return "", fmt.Errorf("%s layer: %w", what, err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		return "", fmt.Errorf("%s blob: %w", what, err)
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%s blob %s is not a regular file", what, p)
	}
	if fi.Size() != l.Size {
		return "", fmt.Errorf("%s blob %s has %d bytes, the manifest says %d (incomplete download?)", what, p, fi.Size(), l.Size)
	}
	return p, nil
}

// readText returns the contents of the blob of l, a layer holding what.
func readText(blobs string, l layer, what string) (string, error) {
	p, err := blobFile(blobs, l, what)
	if err != nil {
		return "", err
	}
	b, _, err := readLimited(p, maxTextSize)
	if err != nil {
		return "", fmt.Errorf("%s blob: %w", what, err)
	}
	return string(b), nil
}

// readLimited reads the regular file at path, which must not exceed limit
// bytes, and returns its contents and file info.
func readLimited(path string, limit int64) ([]byte, os.FileInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("%s is not a regular file", path)
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(b)) > limit {
		return nil, nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return b, fi, nil
}
