package carryon

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"

	"github.com/carryon/carryon/models/gguf"
)

// BaseFromGGUF reads a base model's identity from its GGUF file: the
// architecture, sizes and Fingerprint.
func BaseFromGGUF(f *gguf.File) (Base, error) {
	arch := f.Arch()
	if arch == "" {
		return Base{}, fmt.Errorf("base model identity: no general.architecture")
	}
	dim, ok := f.Meta.Int(arch + ".embedding_length")
	if !ok || dim <= 0 {
		return Base{}, fmt.Errorf("base model identity: no %s.embedding_length", arch)
	}
	layers, ok := f.Meta.Int(arch + ".block_count")
	if !ok || layers <= 0 {
		return Base{}, fmt.Errorf("base model identity: no %s.block_count", arch)
	}
	ctx, _ := f.Meta.Int(arch + ".context_length")
	emb, err := f.Tensor("token_embd.weight")
	if err != nil {
		return Base{}, fmt.Errorf("base model identity: %w", err)
	}
	if len(emb.Shape) != 2 {
		return Base{}, fmt.Errorf("base model identity: token_embd.weight has shape %v", emb.Shape)
	}
	fp, err := Fingerprint(f)
	if err != nil {
		return Base{}, err
	}
	return Base{
		Arch:        arch,
		Dim:         int(dim),
		Vocab:       emb.Shape[1],
		Layers:      int(layers),
		Context:     int(max(ctx, 0)),
		Fingerprint: fp,
	}, nil
}

// Fingerprint identifies a base model by what a head's output goes through:
// "sha256:" and the hex SHA-256 of the final norm weights and the LM head
// (output.weight, or token_embd.weight for a model with tied embeddings),
// each hashed with its name, type and shape. Two files of the same weights
// give the same fingerprint whatever their metadata says; a requantized
// model gives another.
func Fingerprint(f *gguf.File) (string, error) {
	lm := "output.weight"
	if !f.HasTensor(lm) {
		lm = "token_embd.weight"
	}
	h := sha256.New()
	for _, name := range []string{"output_norm.weight", lm} {
		t, err := f.Tensor(name)
		if err != nil {
			return "", fmt.Errorf("fingerprint base model: %w", err)
		}
		var buf [8]byte
		write := func(v uint64) {
			binary.LittleEndian.PutUint64(buf[:], v)
			h.Write(buf[:])
		}
		write(uint64(len(name)))
		h.Write([]byte(name))
		write(uint64(t.Type))
		write(uint64(len(t.Shape)))
		for _, d := range t.Shape {
			write(uint64(d))
		}
		write(uint64(len(t.Data)))
		h.Write(t.Data)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}
