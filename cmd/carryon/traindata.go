package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"

	"github.com/spf13/cobra"
)

// genDataOptions are the flags of `carryon train gen-data`.
type genDataOptions struct {
	task, out, format, testOut, ops, worked string
	n, testN, digits                        int
	seed                                    uint64
}

func newTrainDataCommand() *cobra.Command {
	var o genDataOptions
	cmd := &cobra.Command{
		Use:   "gen-data --out FILE [--task weather|arithmetic]",
		Short: "Write a synthetic training set (weather reports or worked arithmetic)",
		Long: `gen-data writes a synthetic training set.

--task weather (the default) writes templated weather reports, a text domain
far from the children's stories small test models are trained on: as plain
text, or with --format chat as chat JSONL where the user names a city and day
and the assistant gives the report.

--task arithmetic writes chat JSONL where the user asks "347+589" and the
assistant works it out column by column, least significant first, with the
carry (or borrow) of each column, and ends with "answer: N". --digits sets the
operands' width, --ops the operations (add, sub, mul: a number times one
digit). --worked columns also restates each column's two digits and carry
right before its two-digit result; --worked letters writes those as the
letters a-j, which small bases keep apart better than digits. With
--test-out, --test-n further problems, none of them in the training set, go
to a second file for "carryon train eval".`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runGenData(o, cmd.Flags().Changed("format"))
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.task, "task", "weather", "weather or arithmetic")
	f.StringVar(&o.out, "out", "", "file to write")
	f.StringVar(&o.format, "format", "text", "weather: text or chat (arithmetic is always chat)")
	f.IntVar(&o.n, "n", 2000, "examples to write")
	f.Uint64Var(&o.seed, "seed", 1, "random seed")
	f.StringVar(&o.testOut, "test-out", "", "arithmetic: file for held-out problems")
	f.IntVar(&o.testN, "test-n", 200, "arithmetic: held-out problems to write to --test-out")
	f.IntVar(&o.digits, "digits", 3, "arithmetic: digits of each operand (the multiplier of mul has one)")
	f.StringVar(&o.ops, "ops", "add,sub", "arithmetic: operations, a comma-separated list of add, sub and mul")
	f.StringVar(&o.worked, "worked", "shifted", "arithmetic: worked format, shifted (operands shifted per column), columns (also each column's digits and carry before its two-digit result) or letters (columns, with those digits written as the letters a-j)")
	_ = cmd.MarkFlagRequired("out")
	return cmd
}

func runGenData(o genDataOptions, formatSet bool) error {
	switch o.task {
	case "weather":
		if o.testOut != "" {
			return fmt.Errorf("gen-data: --test-out is for --task arithmetic")
		}
		return writeDataFile(o.out, func(w io.Writer) error { return writeWeather(w, o.format, o.n, o.seed) })
	case "arithmetic":
		if formatSet && o.format != "chat" {
			return fmt.Errorf("gen-data: --task arithmetic writes chat JSONL, not --format %s", o.format)
		}
		ops, err := parseArithmeticOps(o.ops)
		if err != nil {
			return fmt.Errorf("gen-data: %w", err)
		}
		nTest := 0
		if o.testOut != "" {
			nTest = o.testN
		}
		train, test, err := arithmeticSets(ops, o.digits, o.n, nTest, o.seed)
		if err != nil {
			return fmt.Errorf("gen-data: %w", err)
		}
		switch o.worked {
		case "shifted":
		case "columns":
			for i := range train {
				train[i].columns = true
			}
			for i := range test {
				test[i].columns = true
			}
		case "letters":
			for i := range train {
				train[i].columns, train[i].letters = true, true
			}
			for i := range test {
				test[i].columns, test[i].letters = true, true
			}
		default:
			return fmt.Errorf("gen-data: --worked %q: want shifted, columns or letters", o.worked)
		}
		if err := writeDataFile(o.out, func(w io.Writer) error { return writeArithmetic(w, train) }); err != nil {
			return err
		}
		if o.testOut == "" {
			return nil
		}
		return writeDataFile(o.testOut, func(w io.Writer) error { return writeArithmetic(w, test) })
	default:
		return fmt.Errorf("gen-data: --task %q: want weather or arithmetic", o.task)
	}
}

// writeDataFile creates path and fills it through a buffered writer.
func writeDataFile(path string, fill func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("gen-data: %w", err)
	}
	w := bufio.NewWriter(f)
	if err := fill(w); err != nil {
		f.Close()
		return fmt.Errorf("gen-data %s: %w", path, err)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("gen-data %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("gen-data %s: %w", path, err)
	}
	return nil
}

var (
	weatherCities = []string{"Oslo", "Lima", "Perth", "Quito", "Cairo", "Dublin", "Hanoi", "Denver", "Nairobi", "Tromso", "Bergen", "Austin"}
	weatherDays   = []string{"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"}
	weatherSky    = []string{"sunny", "cloudy", "overcast", "light rain", "heavy rain", "snow showers", "fog", "thunderstorms"}
	weatherWinds  = []string{"north", "south", "east", "west", "northwest", "southeast"}
)

// writeWeather writes n weather reports drawn from seed.
func writeWeather(w io.Writer, format string, n int, seed uint64) error {
	if format != "text" && format != "chat" {
		return fmt.Errorf("--format %q: want text or chat", format)
	}
	rng := rand.New(rand.NewPCG(seed, 7))
	pick := func(v []string) string { return v[rng.IntN(len(v))] }
	for range n {
		city, day := pick(weatherCities), pick(weatherDays)
		low := rng.IntN(25) - 5
		high := low + 3 + rng.IntN(10)
		report := fmt.Sprintf("Weather for %s on %s: %s, high %d C, low %d C, wind %d km/h from the %s, chance of rain %d%%.",
			city, day, pick(weatherSky), high, low, 5*rng.IntN(12), pick(weatherWinds), 10*rng.IntN(11))
		var err error
		if format == "text" {
			_, err = fmt.Fprintln(w, report)
		} else {
			line, _ := json.Marshal(map[string]any{"messages": []map[string]string{
				{"role": "user", "content": fmt.Sprintf("What is the weather in %s on %s?", city, day)},
				{"role": "assistant", "content": report},
			}})
			_, err = fmt.Fprintf(w, "%s\n", line)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
