package tsdata

import (
	"testing"

	"github.com/carryon/carryon/models/testenv"
)

// TestSharedSetsParse reads the real sets of the shared tsdata directory
// (beside the shared test data) in the layouts their README describes.
func TestSharedSetsParse(t *testing.T) {
	long := []struct {
		path       string
		rows, cols int
		times      bool
	}{
		{"../tsdata/exchange_rate/exchange_rate.csv", 7588, 8, true},
		{"../tsdata/illness/national_illness.csv", 966, 7, true},
		{"../tsdata/weather/weather.values_noheader.csv", 52696, 21, false},
		{"../tsdata/classic/monthly-shampoo-sales.csv", 36, 1, false},
		{"../tsdata/classic/airline-passengers.csv", 144, 1, true},
	}
	for _, l := range long {
		f, err := LoadCSV(testenv.Path(t, l.path))
		if err != nil {
			t.Fatal(err)
		}
		if f.Len() != l.rows || len(f.Columns) != l.cols || (f.Times != nil) != l.times {
			t.Errorf("%s: %d rows x %d columns, times %v; want %d x %d, times %v", l.path, f.Len(), len(f.Columns), f.Times != nil, l.rows, l.cols, l.times)
		}
	}
	s, err := LoadWideCSV(testenv.Path(t, "../tsdata/m4/Hourly-train.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if len(s) != 414 || len(s[0].Values) < 700 || len(s[0].Values) > 960 {
		t.Errorf("M4 hourly: %d series, the first of %d values", len(s), len(s[0].Values))
	}
}
