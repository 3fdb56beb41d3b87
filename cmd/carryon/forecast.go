package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image/color"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/carryon/carryon/models/gtt"
	"github.com/carryon/carryon/models/tsdata"
	"github.com/carryon/carryon/server/config"
)

// forecastOptions are the flags of carryon forecast.
type forecastOptions struct {
	csv         string
	columns     []string
	horizon     int
	model       string
	dataDir     string
	quantiles   []float64
	plot        string
	plotW       int
	plotH       int
	json        bool
	threads     int
	independent bool
	guard       guardOptions
}

func newForecastCommand() *cobra.Command {
	o := forecastOptions{dataDir: config.Default().DataDir}
	var quantiles string
	cmd := &cobra.Command{
		Use:   "forecast --csv FILE [--columns a,b] [--horizon H] [--model DIR|NAME]",
		Short: "Forecast the columns of a CSV file with a GTT model, in this process",
		Long: `forecast reads a CSV file (a header row, an optional date column, numeric columns;
empty cells and NaN are missing values), forecasts the chosen columns with a GTT model
in this process (no server needed) and prints the forecast as a table or JSON, with
quantiles calibrated on the file's own history. --plot draws the history, the forecast
and its quantile band into a PNG file.

The columns are one multivariate input whose channels attend to each other; with
--independent each column is forecast on its own. --model is the embedded model
(gtt-small, the default), a model directory or weights file, or the name of a model
fine-tuned by the server (DATA_DIR/forecasters/NAME).

As the server does, columns whose history behaves as a random walk get their last
value as the forecast; columns whose history shows a season get the model's
forecast mixed with the seasonal-naive one, and columns with a clear trend with a
damped trend, weighted by backtest errors (gtt.Guard; --walk leaves out the mixes,
--raw the whole guard).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q, err := parseLevels(quantiles)
			if err != nil {
				return err
			}
			o.quantiles = q
			return runForecast(cmd.Context(), cmd.OutOrStdout(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.csv, "csv", "", "CSV file to read (required)")
	f.StringSliceVar(&o.columns, "columns", nil, "columns to forecast, by name or 0-based index (default: every numeric column)")
	f.IntVar(&o.horizon, "horizon", 96, "steps to forecast")
	f.StringVar(&o.model, "model", "gtt-small", "gtt-small, a model directory or file, or a tuned model's name")
	f.StringVar(&o.dataDir, "data-dir", o.dataDir, "data directory holding the tuned models (forecasters/NAME)")
	f.StringVar(&quantiles, "quantiles", "0.1,0.5,0.9", "quantile levels to add, comma-separated (empty for none)")
	f.StringVar(&o.plot, "plot", "", "write a PNG plot of the history, forecast and quantile band to this file")
	f.IntVar(&o.plotW, "plot-width", 1200, "plot width in pixels")
	f.IntVar(&o.plotH, "plot-height", 400, "plot height in pixels per column")
	f.BoolVar(&o.json, "json", false, "print JSON instead of a table")
	f.IntVar(&o.threads, "threads", runtime.NumCPU(), "compute threads")
	f.BoolVar(&o.independent, "independent", false, "forecast each column on its own instead of as one multivariate input")
	o.guard.addFlags(f)
	_ = cmd.MarkFlagRequired("csv")
	return cmd
}

// parseLevels reads comma-separated quantile levels in (0, 1) and returns
// them sorted.
func parseLevels(s string) ([]float64, error) {
	var out []float64
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		v, err := strconv.ParseFloat(f, 64)
		if err != nil || !(v > 0 && v < 1) {
			return nil, fmt.Errorf("--quantiles: %q is not a level in (0, 1)", f)
		}
		if slices.Contains(out, v) {
			return nil, fmt.Errorf("--quantiles: %v is listed twice", v)
		}
		out = append(out, v)
	}
	slices.Sort(out)
	return out, nil
}

// forecastOutput is what --json prints.
type forecastOutput struct {
	Model      string           `json:"model"`
	Horizon    int              `json:"horizon"`
	Timestamps []string         `json:"timestamps,omitempty"`
	Forecasts  []columnForecast `json:"forecasts"`
}

type columnForecast struct {
	Name      string               `json:"name"`
	Mean      []float32            `json:"mean"`
	Quantiles map[string][]float32 `json:"quantiles,omitempty"`
}

// loadPredictor resolves --model.
func loadPredictor(model, dataDir string, threads int) (gtt.Predictor, string, error) {
	var p gtt.Predictor
	var desc string
	switch {
	case model == "" || model == "gtt-small":
		m, _, err := gtt.Default()
		if err != nil {
			return nil, "", err
		}
		p, desc = m, "gtt-small"
	default:
		path := model
		if _, err := os.Stat(path); err != nil {
			tuned := filepath.Join(dataDir, "forecasters", model)
			if _, err2 := os.Stat(tuned); err2 != nil || strings.ContainsAny(model, `/\`) {
				return nil, "", fmt.Errorf("--model %s: not gtt-small, a model directory or file, or a tuned model in %s", model, filepath.Join(dataDir, "forecasters"))
			}
			path = tuned
		}
		var err error
		if p, err = gtt.LoadPredictor(path); err != nil {
			return nil, "", err
		}
		desc = path
	}
	switch m := p.(type) {
	case *gtt.Model:
		p = m.WithThreads(threads)
	case *gtt.Tuned:
		p = m.WithThreads(threads)
	}
	return p, desc, nil
}

func runForecast(ctx context.Context, out io.Writer, o forecastOptions) error {
	if o.horizon < 1 || o.horizon > gtt.MaxHorizon {
		return fmt.Errorf("--horizon %d is outside [1, %d]", o.horizon, gtt.MaxHorizon)
	}
	if o.plot != "" && (o.plotW < 100 || o.plotH < 100 || o.plotW > 10000 || o.plotH > 10000) {
		return fmt.Errorf("--plot-width and --plot-height must be in [100, 10000] pixels")
	}
	f, err := tsdata.LoadCSV(o.csv)
	if err != nil {
		return err
	}
	cols, err := pickColumns(f, o.columns)
	if err != nil {
		return err
	}
	p, desc, err := loadPredictor(o.model, o.dataDir, o.threads)
	if err != nil {
		return err
	}
	series := make([][]float32, len(cols))
	for i, c := range cols {
		series[i] = make([]float32, f.Len())
		for k, v := range f.Columns[c] {
			series[i][k] = float32(v)
		}
	}
	var inputs []gtt.Input
	if o.independent {
		for _, s := range series {
			inputs = append(inputs, gtt.Input{Series: [][]float32{s}, Timestamps: f.Times})
		}
	} else {
		inputs = []gtt.Input{{Series: series, Timestamps: f.Times}}
	}
	p, _, err = o.guard.wrap(p)
	if err != nil {
		return fmt.Errorf("forecast: %w", err)
	}
	preds, err := gtt.Quantiles(ctx, p, inputs, o.horizon, o.quantiles)
	if err != nil {
		return fmt.Errorf("forecast %s: %w", o.csv, err)
	}
	res := forecastOutput{Model: desc, Horizon: o.horizon}
	var future []time.Time
	if f.Times != nil {
		if cal, err := gtt.NewCalendar(f.Times, 1<<16); err == nil {
			last := f.Times[len(f.Times)-1]
			for k := 1; k <= o.horizon; k++ {
				t := cal.After(last, k)
				future = append(future, t)
				res.Timestamps = append(res.Timestamps, t.Format(time.RFC3339))
			}
		}
	}
	for i, c := range cols {
		pi, ch := 0, i
		if o.independent {
			pi, ch = i, 0
		}
		cf := columnForecast{Name: f.Names[c], Mean: preds[pi].Mean[ch]}
		if len(o.quantiles) > 0 {
			cf.Quantiles = map[string][]float32{}
			for l, q := range o.quantiles {
				cf.Quantiles[levelName(q)] = preds[pi].Quantiles[l][ch]
			}
		}
		res.Forecasts = append(res.Forecasts, cf)
	}
	if o.plot != "" {
		if err := plotForecast(o.plot, f, cols, res, o.quantiles, o.plotW, o.plotH); err != nil {
			return err
		}
	}
	if o.json {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	return printForecastTable(out, res, o.quantiles)
}

func levelName(q float64) string { return strconv.FormatFloat(q, 'f', -1, 64) }

// pickColumns resolves --columns (names or indexes); the default is every
// column with an observed value.
func pickColumns(f *tsdata.Frame, names []string) ([]int, error) {
	if len(f.Columns) == 0 || f.Len() == 0 {
		return nil, errors.New("the file has no numeric columns or no rows")
	}
	if len(names) == 0 {
		var out []int
		for c, col := range f.Columns {
			if slices.ContainsFunc(col, func(v float64) bool { return !math.IsNaN(v) }) {
				out = append(out, c)
			}
		}
		if len(out) == 0 {
			return nil, errors.New("no column has an observed value")
		}
		return out, nil
	}
	var out []int
	for _, n := range names {
		c := slices.Index(f.Names, n)
		if c < 0 {
			if i, err := strconv.Atoi(n); err == nil && i >= 0 && i < len(f.Columns) {
				c = i
			} else {
				return nil, fmt.Errorf("--columns: no column %q (the file has %s)", n, strings.Join(f.Names, ", "))
			}
		}
		out = append(out, c)
	}
	return out, nil
}

// printForecastTable writes one row per step: the step (or its time), then
// per column the mean and the quantiles.
func printForecastTable(out io.Writer, res forecastOutput, levels []float64) error {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := []string{"step"}
	if res.Timestamps != nil {
		head = []string{"time"}
	}
	for _, f := range res.Forecasts {
		head = append(head, f.Name)
		for _, q := range levels {
			head = append(head, f.Name+" q"+levelName(q))
		}
	}
	fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")
	for k := 0; k < res.Horizon; k++ {
		row := []string{strconv.Itoa(k + 1)}
		if res.Timestamps != nil {
			row[0] = res.Timestamps[k]
		}
		for _, f := range res.Forecasts {
			row = append(row, strconv.FormatFloat(float64(f.Mean[k]), 'g', 6, 32))
			for _, q := range levels {
				row = append(row, strconv.FormatFloat(float64(f.Quantiles[levelName(q)][k]), 'g', 6, 32))
			}
		}
		fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
	}
	return tw.Flush()
}

// plotForecast draws one panel per column: the last steps of the history,
// the forecast, and the band between the lowest and highest quantile level,
// into a PNG of width × (height per column) pixels.
func plotForecast(path string, f *tsdata.Frame, cols []int, res forecastOutput, levels []float64, width, height int) error {
	const dpi = 96
	n := f.Len()
	show := min(n, max(4*res.Horizon, 200))
	plots := make([][]*plot.Plot, len(cols))
	for i, c := range cols {
		p := plot.New()
		p.Title.Text = f.Names[c]
		p.X.Label.Text = "step"
		fc := res.Forecasts[i]
		if len(levels) >= 2 {
			lo, hi := fc.Quantiles[levelName(levels[0])], fc.Quantiles[levelName(levels[len(levels)-1])]
			band := make(plotter.XYs, 0, 2*res.Horizon)
			for k := 0; k < res.Horizon; k++ {
				band = append(band, plotter.XY{X: float64(n + k), Y: float64(lo[k])})
			}
			for k := res.Horizon - 1; k >= 0; k-- {
				band = append(band, plotter.XY{X: float64(n + k), Y: float64(hi[k])})
			}
			poly, err := plotter.NewPolygon(band)
			if err != nil {
				return fmt.Errorf("plot %s: %w", path, err)
			}
			poly.Color = color.NRGBA{R: 255, G: 150, A: 110}
			poly.LineStyle.Width = 0
			p.Add(poly)
			p.Legend.Add(fmt.Sprintf("q%s–q%s", levelName(levels[0]), levelName(levels[len(levels)-1])), poly)
		}
		var hist plotter.XYs
		for k := n - show; k < n; k++ {
			if v := f.Columns[c][k]; !math.IsNaN(v) && !math.IsInf(v, 0) {
				hist = append(hist, plotter.XY{X: float64(k), Y: v})
			}
		}
		if len(hist) > 0 {
			l, err := plotter.NewLine(hist)
			if err != nil {
				return fmt.Errorf("plot %s: %w", path, err)
			}
			l.Color = color.RGBA{B: 200, A: 255}
			p.Add(l)
			p.Legend.Add("history", l)
		}
		mean := make(plotter.XYs, res.Horizon)
		for k := range mean {
			mean[k] = plotter.XY{X: float64(n + k), Y: float64(fc.Mean[k])}
		}
		l, err := plotter.NewLine(mean)
		if err != nil {
			return fmt.Errorf("plot %s: %w", path, err)
		}
		l.Color = color.RGBA{R: 220, A: 255}
		l.Width = vg.Points(1.5)
		p.Add(l)
		p.Legend.Add("forecast", l)
		p.Legend.Top = true
		plots[i] = []*plot.Plot{p}
	}
	w := vg.Length(width) * vg.Inch / dpi
	h := vg.Length(height*len(cols)) * vg.Inch / dpi
	img := vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(dpi))
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: len(cols), Cols: 1, PadX: vg.Millimeter, PadY: vg.Millimeter}
	canvases := plot.Align(plots, tiles, dc)
	for i := range plots {
		plots[i][0].Draw(canvases[i][0])
	}
	file, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(file); err != nil {
		file.Close()
		return fmt.Errorf("plot %s: %w", path, err)
	}
	if err := file.Close(); err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	return nil
}
