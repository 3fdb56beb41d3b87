package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// headsAdmin talks to the head administration routes of a running server.
type headsAdmin struct {
	url string
	key string
}

func (a *headsAdmin) flags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&a.url, "url", "http://127.0.0.1:8080", "base URL of the running server")
	cmd.Flags().StringVar(&a.key, "admin-key", os.Getenv("CARRYON_ADMIN_KEY"), "admin key of the server (default $CARRYON_ADMIN_KEY)")
}

// call sends one request and prints the JSON answer.
func (a *headsAdmin) call(cmd *cobra.Command, method, path string, body any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(cmd.Context(), method, strings.TrimSuffix(a.url, "/")+path, rd)
	if err != nil {
		return fmt.Errorf("heads: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if a.key != "" {
		req.Header.Set("Authorization", "Bearer "+a.key)
	}
	client := &http.Client{Timeout: 5 * time.Minute}
	res, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("heads: %s %s: %w", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return fmt.Errorf("heads: read the answer: %w", err)
	}
	if res.StatusCode >= 300 {
		var e struct {
			Error struct{ Message string } `json:"error"`
		}
		if json.Unmarshal(b, &e) == nil && e.Error.Message != "" {
			return fmt.Errorf("heads: %s %s: %d: %s", method, path, res.StatusCode, e.Error.Message)
		}
		return fmt.Errorf("heads: %s %s: %d: %s", method, path, res.StatusCode, bytes.TrimSpace(b))
	}
	var pretty bytes.Buffer
	if json.Indent(&pretty, b, "", "  ") == nil {
		b = pretty.Bytes()
	}
	_, err = fmt.Fprintln(cmd.OutOrStdout(), string(b))
	return err
}

// absDir makes a head directory absolute: the server resolves paths from
// its own working directory.
func absDir(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("heads: %w", err)
	}
	return abs, nil
}

// newHeadsAdminCommands returns list, register, swap, remove, pin (and
// unpin) and policy.
func newHeadsAdminCommands() []*cobra.Command {
	var cmds []*cobra.Command
	add := func(use, short string, args cobra.PositionalArgs, run func(a *headsAdmin, cmd *cobra.Command, args []string) error) *cobra.Command {
		a := &headsAdmin{}
		c := &cobra.Command{Use: use, Short: short, Args: args,
			RunE: func(cmd *cobra.Command, args []string) error { return run(a, cmd, args) }}
		a.flags(c)
		cmds = append(cmds, c)
		return c
	}
	add("list", "List the heads of a running server (versions, status, plugin)", cobra.NoArgs,
		func(a *headsAdmin, cmd *cobra.Command, _ []string) error {
			return a.call(cmd, http.MethodGet, "/v1/heads", nil)
		})
	var base string
	reg := add("register ID DIR", "Register a head directory under ID on a running server", cobra.ExactArgs(2),
		func(a *headsAdmin, cmd *cobra.Command, args []string) error {
			dir, err := absDir(args[1])
			if err != nil {
				return err
			}
			return a.call(cmd, http.MethodPost, "/v1/heads", map[string]string{"id": args[0], "path": dir, "base": base})
		})
	reg.Flags().StringVar(&base, "base", "", "base model name (default: the model whose fingerprint the head names)")
	add("swap ID DIR", "Make DIR the new version of head ID; running requests finish on the old one", cobra.ExactArgs(2),
		func(a *headsAdmin, cmd *cobra.Command, args []string) error {
			dir, err := absDir(args[1])
			if err != nil {
				return err
			}
			return a.call(cmd, http.MethodPut, "/v1/heads/"+args[0], map[string]string{"path": dir})
		})
	add("remove ID", "Remove head ID from a running server", cobra.ExactArgs(1),
		func(a *headsAdmin, cmd *cobra.Command, args []string) error {
			return a.call(cmd, http.MethodDelete, "/v1/heads/"+args[0], nil)
		})
	var unpin bool
	pin := add("pin ID", "Pin head ID to its current version (no swap or removal until unpinned)", cobra.ExactArgs(1),
		func(a *headsAdmin, cmd *cobra.Command, args []string) error {
			action := "/pin"
			if unpin {
				action = "/unpin"
			}
			return a.call(cmd, http.MethodPost, "/v1/heads/"+args[0]+action, nil)
		})
	pin.Flags().BoolVar(&unpin, "unpin", false, "remove the pin instead")
	var minSamples, maxSamples int
	var holdout float64
	policy := add("policy ID [serve|learn]", "Set head ID's policy (learn: log its traffic and retrain it) and learning thresholds", cobra.RangeArgs(1, 2),
		func(a *headsAdmin, cmd *cobra.Command, args []string) error {
			body := map[string]any{}
			if len(args) == 2 {
				body["policy"] = args[1]
			}
			f := cmd.Flags()
			if f.Changed("min-samples") {
				body["min_samples"] = minSamples
			}
			if f.Changed("holdout") {
				body["holdout"] = holdout
			}
			if f.Changed("max-samples") {
				body["max_samples"] = maxSamples
			}
			if len(body) == 0 {
				return a.call(cmd, http.MethodGet, "/v1/heads/"+args[0], nil)
			}
			return a.call(cmd, http.MethodPost, "/v1/heads/"+args[0], body)
		})
	policy.Flags().IntVar(&minSamples, "min-samples", 0, "new logged samples that start a retraining (0: the server's default)")
	policy.Flags().Float64Var(&holdout, "holdout", 0, "fraction of a retraining's samples held out for validation, up to 0.5 (0: the server's default)")
	policy.Flags().IntVar(&maxSamples, "max-samples", 0, "most samples of one retraining (0: the server's default)")
	return cmds
}
