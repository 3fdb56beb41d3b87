package finetune

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"sync"
	"time"
)

// PurposeFineTune is the only file purpose the store accepts.
const PurposeFineTune = "fine-tune"

// ErrNotFound is wrapped by the errors for unknown file and job ids.
var ErrNotFound = errors.New("not found")

// ErrInvalid is wrapped by the errors for bad input that is not a training
// file's content (a purpose, a name).
var ErrInvalid = errors.New("invalid")

// File is an uploaded file as the OpenAI API describes it.
type File struct {
	ID        string `json:"id"`
	Object    string `json:"object"` // "file"
	Bytes     int64  `json:"bytes"`
	CreatedAt int64  `json:"created_at"`
	Filename  string `json:"filename"`
	Purpose   string `json:"purpose"`
	// Status is always "processed": files are validated on upload.
	Status string `json:"status"`
}

// idPattern is what ids made by newID look like; anything else is not
// looked up on disk.
var idPattern = regexp.MustCompile(`^[a-z]+-[0-9a-f]{24}$`)

// newID returns a random id with a prefix ("file", "ftjob").
func newID(prefix string) string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return prefix + "-" + hex.EncodeToString(b[:])
}

// FileStore keeps uploaded files in a directory: <id>.json (the File and
// its place in the upload order) and <id>.jsonl (the content). It is safe
// for concurrent use.
type FileStore struct {
	dir string

	mu    sync.Mutex
	files map[string]storedFile
	seq   int64
}

// storedFile is a file's <id>.json.
type storedFile struct {
	File File  `json:"file"`
	Seq  int64 `json:"seq"` // upload order (created_at has only seconds)
}

// OpenFiles opens (creating it if needed) a file store in dir and reads
// the files stored there.
func OpenFiles(dir string) (*FileStore, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("open file store %s: %w", dir, err)
	}
	s := &FileStore{dir: dir, files: map[string]storedFile{}}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("open file store %s: %w", dir, err)
	}
	for _, e := range entries {
		id, ok := cutSuffix(e.Name(), ".json")
		if !ok || !idPattern.MatchString(id) {
			continue
		}
		var f storedFile
		if err := readJSON(filepath.Join(dir, e.Name()), &f); err != nil {
			return nil, fmt.Errorf("open file store: %w", err)
		}
		s.files[id] = f
		s.seq = max(s.seq, f.Seq)
	}
	return s, nil
}

func cutSuffix(s, suffix string) (string, bool) {
	if len(s) > len(suffix) && s[len(s)-len(suffix):] == suffix {
		return s[:len(s)-len(suffix)], true
	}
	return s, false
}

// Put validates and stores a file. A purpose other than "fine-tune" is an
// error wrapping ErrInvalid; content that is not a valid chat-format
// training file is a *ValidationError.
func (s *FileStore) Put(name, purpose string, data []byte) (File, error) {
	if purpose != PurposeFineTune {
		return File{}, fmt.Errorf("store file %q: %w purpose %q: this server stores only %q files", name, ErrInvalid, purpose, PurposeFineTune)
	}
	if name == "" {
		name = "upload.jsonl"
	}
	if _, err := ParseChat(name, data); err != nil {
		return File{}, err
	}
	f := File{ID: newID("file"), Object: "file", Bytes: int64(len(data)), CreatedAt: time.Now().Unix(),
		Filename: filepath.Base(name), Purpose: purpose, Status: "processed"}
	if err := writeFileAtomic(filepath.Join(s.dir, f.ID+".jsonl"), data); err != nil {
		return File{}, fmt.Errorf("store file %q: %w", name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sf := storedFile{File: f, Seq: s.seq + 1}
	if err := writeJSON(filepath.Join(s.dir, f.ID+".json"), sf); err != nil {
		_ = os.Remove(filepath.Join(s.dir, f.ID+".jsonl"))
		return File{}, fmt.Errorf("store file %q: %w", name, err)
	}
	s.files[f.ID], s.seq = sf, sf.Seq
	return f, nil
}

// Get returns a stored file's description.
func (s *FileStore) Get(id string) (File, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.files[id]
	if !ok {
		return File{}, fmt.Errorf("file %s: %w", id, ErrNotFound)
	}
	return f.File, nil
}

// Content returns a stored file's bytes.
func (s *FileStore) Content(id string) ([]byte, error) {
	if _, err := s.Get(id); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(s.dir, id+".jsonl"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("file %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read file %s: %w", id, err)
	}
	return b, nil
}

// List returns every stored file, newest first.
func (s *FileStore) List() []File {
	s.mu.Lock()
	all := make([]storedFile, 0, len(s.files))
	for _, f := range s.files {
		all = append(all, f)
	}
	s.mu.Unlock()
	sort.Slice(all, func(i, j int) bool { return all[i].Seq > all[j].Seq })
	out := make([]File, len(all))
	for i, f := range all {
		out[i] = f.File
	}
	return out
}

// Delete removes a stored file.
func (s *FileStore) Delete(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.files[id]; !ok {
		return fmt.Errorf("delete file %s: %w", id, ErrNotFound)
	}
	if err := os.Remove(filepath.Join(s.dir, id+".json")); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete file %s: %w", id, err)
	}
	_ = os.Remove(filepath.Join(s.dir, id+".jsonl"))
	delete(s.files, id)
	return nil
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	return nil
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(path, append(b, '\n'))
}

// writeFileAtomic writes a file through a temporary name and a rename, so
// that a crash leaves the old content or the new, never a part.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
