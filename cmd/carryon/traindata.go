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

func newTrainDataCommand() *cobra.Command {
	var out, format string
	var n int
	var seed uint64
	cmd := &cobra.Command{
		Use:   "gen-data --out FILE",
		Short: "Write a synthetic training set (templated weather reports) for trying out training",
		Long: `gen-data writes templated weather reports, a text domain far from the
children's stories small test models are trained on: as plain text, or with
--format chat as chat JSONL where the user names a city and day and the
assistant gives the report.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := os.Create(out)
			if err != nil {
				return fmt.Errorf("gen-data: %w", err)
			}
			w := bufio.NewWriter(f)
			if err := writeWeather(w, format, n, seed); err != nil {
				f.Close()
				return fmt.Errorf("gen-data %s: %w", out, err)
			}
			if err := w.Flush(); err != nil {
				f.Close()
				return fmt.Errorf("gen-data %s: %w", out, err)
			}
			return f.Close()
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "file to write")
	cmd.Flags().StringVar(&format, "format", "text", "text or chat")
	cmd.Flags().IntVar(&n, "n", 2000, "reports to write")
	cmd.Flags().Uint64Var(&seed, "seed", 1, "random seed")
	_ = cmd.MarkFlagRequired("out")
	return cmd
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
