package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/carryon/carryon/models/gguf"
	"github.com/carryon/carryon/models/tokenizer"
)

func newTokenizeCommand() *cobra.Command {
	var (
		model      string
		noBOS      bool
		noSpecial  bool
		showPieces bool
		textFile   string
	)
	cmd := &cobra.Command{
		Use:   "tokenize -m MODEL [--no-bos] [--] TEXT",
		Short: "Print the token ids of a text",
		Long: `Tokenize TEXT (or the contents of --file) with the model's tokenizer and print
the ids separated by spaces. Special tokens written in the text, such as
<|im_start|>, are recognized unless --no-special is given.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			text := strings.Join(args, " ")
			if textFile != "" {
				b, err := os.ReadFile(textFile)
				if err != nil {
					return err
				}
				text = string(b)
			} else if len(args) == 0 {
				return fmt.Errorf("no text to tokenize: give TEXT or --file")
			}
			tok, err := loadTokenizer(model)
			if err != nil {
				return err
			}
			ids := tok.Encode(text, !noBOS, !noSpecial)
			out := cmd.OutOrStdout()
			parts := make([]string, len(ids))
			for i, id := range ids {
				if showPieces {
					parts[i] = fmt.Sprintf("%d:%q", id, tok.Piece(id))
				} else {
					parts[i] = fmt.Sprint(id)
				}
			}
			sep := " "
			if showPieces {
				sep = "\n"
			}
			fmt.Fprintln(out, strings.Join(parts, sep))
			return nil
		},
	}
	cmd.Flags().StringVarP(&model, "model", "m", "", "GGUF file or Ollama model name (required)")
	cmd.Flags().BoolVar(&noBOS, "no-bos", false, "do not add the BOS/EOS tokens the model asks for")
	cmd.Flags().BoolVar(&noSpecial, "no-special", false, "treat special-token text as plain text")
	cmd.Flags().BoolVar(&showPieces, "pieces", false, "print id:piece, one per line")
	cmd.Flags().StringVarP(&textFile, "file", "f", "", "read the text from this file")
	cmd.MarkFlagRequired("model")
	return cmd
}

// loadTokenizer opens a model file and builds its tokenizer; only the
// metadata is read.
func loadTokenizer(model string) (*tokenizer.Tokenizer, error) {
	path, err := resolveModelPath(model)
	if err != nil {
		return nil, err
	}
	f, err := gguf.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	tok, err := tokenizer.FromGGUF(&f.Meta)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return tok, nil
}
