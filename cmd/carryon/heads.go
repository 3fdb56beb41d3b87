package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	carryonhead "github.com/carryon/carryon/models/carryon"
	"github.com/carryon/carryon/models/gguf"
)

// newHeadsCommand groups the carry-on head commands. `init` works on files
// alone; the commands that manage the heads of a running server (list,
// register, swap, pin, remove) join it here.
func newHeadsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "heads",
		Short: "Create and manage carry-on heads",
		Long: `Carry-on heads are small networks that read a frozen base model's hidden states
and correct its next-token distribution per request. A head is a directory
(config.json + weights.safetensors) whose version is the hash of its contents.`,
	}
	cmd.AddCommand(newHeadsInitCommand())
	cmd.AddCommand(newHeadsAdminCommands()...)
	return cmd
}

func newHeadsInitCommand() *cobra.Command {
	var (
		model, out, bridge, taps string
		dtype                    string
		blocks, width, heads     int
		ffn, bridgeDim           int
		alpha                    float32
		seed                     uint64
		force                    bool
	)
	cmd := &cobra.Command{
		Use:   "init --model BASE --out DIR",
		Short: "Write a fresh, randomly initialized carry-on head for a base model",
		Long: `Write a new carry-on head directory for the base model BASE (a GGUF path or a
model in the local Ollama store): config.json, naming the base (architecture,
sizes and a fingerprint of its LM head), and weights.safetensors with random
weights drawn from --seed. The delta projection starts small, so a fresh head
stays close to the base; --alpha 0 makes it return exactly the base.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if model == "" || out == "" {
				return fmt.Errorf("heads init: --model and --out are required")
			}
			path, err := resolveModelPath(model)
			if err != nil {
				return err
			}
			f, err := gguf.Open(path)
			if err != nil {
				return err
			}
			base, err := carryonhead.BaseFromGGUF(f)
			f.Close()
			if err != nil {
				return fmt.Errorf("heads init: %s: %w", path, err)
			}
			c := carryonhead.DefaultConfig(base)
			c.Blocks, c.Width, c.Alpha, c.Seed, c.DType = blocks, width, alpha, seed, dtype
			c.Heads = heads
			if c.Heads == 0 {
				c.Heads = max(1, width/16)
			}
			c.FFN = ffn
			if c.FFN == 0 {
				c.FFN = 4 * width
			}
			c.Bridge = carryonhead.Bridge{Kind: bridge}
			if bridge == carryonhead.BridgeLinear {
				c.Bridge.Dim = bridgeDim
			} else if bridgeDim != 0 {
				return fmt.Errorf("heads init: --bridge-dim needs --bridge linear")
			}
			if c.Taps, err = parseTaps(taps); err != nil {
				return err
			}
			h, err := carryonhead.New(c)
			if err != nil {
				return fmt.Errorf("heads init: %w", err)
			}
			if err := checkOutDir(out, force); err != nil {
				return err
			}
			if err := h.Save(out); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: carry-on head for %s (%s, d=%d, %d layers): r=%d, %d blocks, bridge %s, taps %v, alpha %g, %d %s parameters\nversion %s\n",
				out, path, base.Arch, base.Dim, base.Layers, c.Width, c.Blocks, c.Bridge.Kind, h.Config().Taps, c.Alpha, h.Parameters(), c.DType, h.Version())
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&model, "model", "m", "", "base model: a GGUF file or an Ollama model name")
	fl.StringVarP(&out, "out", "o", "", "directory to write the head into")
	fl.IntVar(&blocks, "layers", 2, "transformer blocks of the head (1-4)")
	fl.IntVar(&width, "dim", 64, "width r of the head's transformer")
	fl.IntVar(&heads, "heads", 0, "attention heads (0: dim/16)")
	fl.IntVar(&ffn, "ffn", 0, "hidden width of the head's MLP (0: 4×dim)")
	fl.StringVar(&bridge, "bridge", carryonhead.BridgeIdentity, "what the head does to the hidden states first: identity, int8 or linear")
	fl.IntVar(&bridgeDim, "bridge-dim", 0, "output width of a linear bridge (0: --dim)")
	fl.StringVar(&taps, "taps", "final", `base layers to read, comma-separated: "final" (the final-norm state) or a layer index`)
	fl.Float32Var(&alpha, "alpha", 1, "merge scale α of the delta (0 gives exactly the base model)")
	fl.Uint64Var(&seed, "seed", 0, "seed of the random initial weights")
	fl.StringVar(&dtype, "dtype", carryonhead.DTypeF16, "weight type of the head's matrices: f16 or f32")
	fl.BoolVar(&force, "force", false, "overwrite the files of an existing head directory")
	return cmd
}

// parseTaps reads a --taps list.
func parseTaps(s string) ([]int, error) {
	var taps []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "final" || f == "-1" {
			taps = append(taps, carryonhead.FinalLayer)
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("heads init: --taps: %q is neither \"final\" nor a layer index", f)
		}
		taps = append(taps, n)
	}
	return taps, nil
}

// checkOutDir refuses to write into a directory that already holds files,
// unless force is set.
func checkOutDir(dir string, force bool) error {
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("heads init: %w", err)
	}
	if len(entries) > 0 && !force {
		return fmt.Errorf("heads init: %s is not empty (use --force to overwrite its head files)", dir)
	}
	return nil
}
