package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/carryon/carryon/models/tsdata"
)

// m4Options are the flags of `carryon gtt m4`.
type m4Options struct {
	data    string
	set     string
	model   string
	guard   guardOptions
	context int
	threads int
	batch   int
	json    bool
}

func newGTTM4Command() *cobra.Command {
	o := m4Options{}
	cmd := &cobra.Command{
		Use:   "m4 --data DIR [--set hourly|weekly|all] [--model FILE] [--raw|--walk] [--context 1024] [--json]",
		Short: "Score a GTT model on the M4 hourly and weekly test files with the M4 metrics",
		Long: `Score a GTT model (the embedded one unless --model is given) on the test
files of the M4 competition's hourly (48 steps) and weekly (13 steps) sets,
with the competition's metrics: sMAPE, MASE (scaled by the in-sample mean
absolute seasonal difference at the official period: 24 hourly, 1 weekly)
and OWA against Naive2. Each series is forecast from the last --context
values of its training part, without timestamps; the naive, seasonal-naive
(last season repeated at the official period, so naive for weekly data) and
Naive2 benchmarks read the whole training part. --data is the directory that
holds Hourly-train.csv, Hourly-test.csv, Weekly-train.csv and Weekly-test.csv
(or a directory with them under m4/). The forecaster is the guarded model,
as in "gtt eval"; --raw gives the network alone, --walk the random-walk
guard without its mixes.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runGTTM4(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.data, "data", "", "directory holding the M4 Hourly/Weekly -train.csv and -test.csv files, or their parent (required)")
	f.StringVar(&o.set, "set", "all", "hourly, weekly or all")
	f.StringVar(&o.model, "model", "", "checkpoint file or directory (default: the embedded model)")
	o.guard.addFlags(f)
	f.IntVar(&o.context, "context", 1024, "training values given to the model (at most the model's context)")
	f.IntVarP(&o.threads, "threads", "t", 1, "compute threads")
	f.IntVar(&o.batch, "batch", 32, "series per forward pass")
	f.BoolVar(&o.json, "json", false, `print {"hourly":{"model":{"smape","mase","owa"},"naive":{...},"seasonal_naive":{...},"naive2":{...}},...}`)
	cmd.MarkFlagRequired("data")
	return cmd
}

// m4JSONSet is one set of the --json output.
type m4JSONSet struct {
	Model         tsdata.M4Scores `json:"model"`
	Naive         tsdata.M4Scores `json:"naive"`
	SeasonalNaive tsdata.M4Scores `json:"seasonal_naive"`
	Naive2        tsdata.M4Scores `json:"naive2"`
}

// m4Dir returns the directory under dir that holds the files of set: dir
// itself, or dir/m4.
func m4Dir(dir string, set tsdata.M4Set) (string, error) {
	train, _ := set.Files()
	for _, d := range []string{dir, filepath.Join(dir, "m4")} {
		if _, err := os.Stat(filepath.Join(d, train)); err == nil {
			return d, nil
		}
	}
	return "", fmt.Errorf("M4 %s: %s is neither in %s nor in %s", set.Name, train, dir, filepath.Join(dir, "m4"))
}

func runGTTM4(ctx context.Context, out, logw io.Writer, o m4Options) error {
	var sets []tsdata.M4Set
	if strings.EqualFold(o.set, "all") {
		sets = []tsdata.M4Set{tsdata.M4Hourly, tsdata.M4Weekly}
	} else {
		s, err := tsdata.M4SetByName(o.set)
		if err != nil {
			return fmt.Errorf("gtt m4: --set: %w", err)
		}
		sets = []tsdata.M4Set{s}
	}
	m, name, err := loadGTT(o.model)
	if err != nil {
		return fmt.Errorf("gtt m4: %w", err)
	}
	m = m.WithThreads(o.threads)
	if o.context < 1 || o.context > m.Config().Context {
		return fmt.Errorf("gtt m4: --context %d is outside [1, %d]", o.context, m.Config().Context)
	}
	// The same forecaster as gtt eval builds (without its --ensemble).
	p, how, err := o.guard.wrap(m)
	if err != nil {
		return fmt.Errorf("gtt m4: %w", err)
	}
	name += ", " + how
	fc := modelForecaster{p}

	results := make([]tsdata.M4Result, 0, len(sets))
	took := make([]time.Duration, 0, len(sets))
	for _, set := range sets {
		dir, err := m4Dir(o.data, set)
		if err != nil {
			return fmt.Errorf("gtt m4: %w", err)
		}
		trainName, testName := set.Files()
		train, err := tsdata.LoadWideCSV(filepath.Join(dir, trainName))
		if err != nil {
			return fmt.Errorf("gtt m4: %w", err)
		}
		test, err := tsdata.LoadWideCSV(filepath.Join(dir, testName))
		if err != nil {
			return fmt.Errorf("gtt m4: %w", err)
		}
		began := time.Now()
		res, err := tsdata.EvaluateM4(ctx, train, test, set, fc, o.batch, o.context, progressPrinter(logw, set.Name+": series"))
		if err != nil {
			return fmt.Errorf("gtt m4 %s: %w", dir, err)
		}
		results = append(results, res)
		took = append(took, time.Since(began))
	}

	if o.json {
		// {"hourly":{...},"weekly":{...}} in the order of the sets.
		var b strings.Builder
		b.WriteByte('{')
		for i, r := range results {
			e, err := json.Marshal(m4JSONSet{r.Model, r.Naive, r.SeasonalNaive, r.Naive2})
			if err != nil {
				return fmt.Errorf("gtt m4: %w", err)
			}
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "%q:%s", r.Set.Name, e)
		}
		b.WriteString("}\n")
		_, err := io.WriteString(out, b.String())
		return err
	}
	for i, r := range results {
		if i > 0 {
			fmt.Fprintln(out)
		}
		fmt.Fprintf(out, "M4 %s: %d series, horizon %d, period %d; model %s; context %d\n",
			r.Set.Name, r.Series, r.Set.Horizon, r.Set.Period, name, o.context)
		if len(r.Skipped) > 0 {
			fmt.Fprintf(out, "skipped %d series whose MASE scale is 0 or whose test values are not finite: %s\n",
				len(r.Skipped), strings.Join(r.Skipped, ", "))
		}
		fmt.Fprintf(out, "Naive2 deseasonalized %d of %d series (M4 seasonality test at lag %d)\n", r.Seasonal, r.Series, r.Set.Period)
		fmt.Fprintf(out, "%-15s | %8s | %7s | %6s\n", "method", "sMAPE", "MASE", "OWA")
		for _, row := range []struct {
			name string
			s    tsdata.M4Scores
		}{{"model", r.Model}, {"naive", r.Naive}, {"seasonal naive", r.SeasonalNaive}, {"Naive2", r.Naive2}} {
			fmt.Fprintf(out, "%-15s | %8.3f | %7.3f | %6.3f\n", row.name, row.s.SMAPE, row.s.MASE, row.s.OWA)
		}
		fmt.Fprintf(out, "took %s\n", took[i].Round(time.Second))
	}
	return nil
}
