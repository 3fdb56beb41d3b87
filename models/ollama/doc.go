// Package ollama finds models in a local Ollama model store, so that a GGUF
// file Ollama has already downloaded can be served without copying it.
//
// An Ollama store (by default $OLLAMA_MODELS, else ~/.ollama/models; see
// [DefaultDir]) holds one JSON manifest per model at
// manifests/<registry>/<namespace>/<model>/<tag>, listing layers by media
// type and sha256 digest, and the layers themselves as content-addressed
// blobs/sha256-<hex>. The GGUF weights are the layer of media type
// application/vnd.ollama.image.model; the chat template, default system
// prompt, default parameters, licenses, multimodal projectors and adapters
// are layers of their own.
//
// [Resolve] accepts any name that `ollama run` accepts ("llama3.2",
// "llama3.2:1b", "user/model:tag", "host:port/namespace/model:tag"),
// filling in the registry registry.ollama.ai, the namespace library and the
// tag latest, and returns a [Model] with the paths and contents of its
// layers. [List] reads every manifest in a store.
//
// The package only reads the store. Manifest names and layer digests are
// validated before they become paths, and every path it builds is checked
// to stay inside the store; a store's own symbolic links are followed.
package ollama
