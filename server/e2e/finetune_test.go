package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/carryon/carryon/models/testenv"
)

// startTuningServer serves stories260K (as "stories260k") with the
// built-in carry-on plugin, built into a temporary plugins directory, and
// returns the server's base URL.
func startTuningServer(t *testing.T) string {
	t.Helper()
	testenv.Path(t, "stories260K.gguf") // skips before the plugin build when the model is missing
	plugins := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(plugins, "carryon"), "github.com/carryon/carryon/plugins/carryon")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the carryon plugin: %v\n%s", err, out)
	}
	return serveStories(t, plugins)
}

// TestOpenAINodeSDKFineTuning runs openai_finetune.mjs, which uploads
// training files, runs a fine-tuning job on stories260K through the
// official OpenAI Node SDK, reads its events and checkpoints, chats with
// the fine-tuned model and cancels a second job.
func TestOpenAINodeSDKFineTuning(t *testing.T) {
	node := requireSDK(t)
	url := startTuningServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "openai_finetune.mjs")
	cmd.Env = append(os.Environ(), "CARRYON_URL="+url, "CARRYON_MODEL=stories260k")
	out, err := cmd.CombinedOutput()
	t.Logf("node openai_finetune.mjs:\n%s", out)
	if err != nil {
		t.Fatalf("the SDK checks failed: %v", err)
	}
}
