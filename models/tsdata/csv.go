package tsdata

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"
)

// ErrFormat is wrapped by every error about a malformed data file.
var ErrFormat = errors.New("malformed time-series file")

// Frame is a table of time series: named columns of equal length, with the
// time of each row when the file has a date column.
type Frame struct {
	// Names holds the column names (from the header, or "0", "1", ...).
	Names []string
	// Columns holds the values, one slice per column; NaN marks a missing
	// value.
	Columns [][]float64
	// Times holds the time of each row, or nil.
	Times []time.Time
}

// Len returns the number of rows.
func (f *Frame) Len() int {
	if len(f.Columns) == 0 {
		return 0
	}
	return len(f.Columns[0])
}

// timeLayouts are the date formats recognised in a date column.
var timeLayouts = []string{
	time.RFC3339,
	"2006-01-02 15:04:05",
	"2006-01-02 15:04",
	"2006-01-02T15:04:05",
	"2006-01-02",
	"2006/1/2 15:04:05",
	"2006/1/2 15:04",
	"2006/1/2",
	"2006-01",
	"01.02.2006 15:04:05",
}

// parseTime parses s with the first layout that fits.
func parseTime(s string) (time.Time, bool) {
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// missingValue reports whether s spells a missing value.
func missingValue(s string) bool {
	switch strings.ToLower(s) {
	case "", "nan", "na", "n/a", "null", "none", "?":
		return true
	}
	return false
}

// parseValue parses one numeric cell; missing cells are NaN.
func parseValue(s string) (float64, bool) {
	s = strings.TrimSpace(s)
	if missingValue(s) {
		return math.NaN(), true
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, false
	}
	return v, true
}

// ReadCSV reads a long table: one row per time step, one column per
// series. The first row is a header when any of its cells is not a number (nor,
// for the first cell, a date).
// The first column is read as the time of each row when all its cells parse
// as dates; a first column that is neither dates nor numbers (an index or a
// label) is dropped. Every other cell must be a number or empty (or NaN, NA,
// null), which is missing. Rows must all have the same number of cells.
func ReadCSV(r io.Reader) (*Frame, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = false
	cr.TrimLeadingSpace = true
	rows, err := cr.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("read csv: %w: %w", err, ErrFormat)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("read csv: no rows: %w", ErrFormat)
	}
	width := len(rows[0])
	for i, row := range rows {
		if len(row) != width {
			return nil, fmt.Errorf("read csv: row %d has %d cells, row 1 has %d: %w", i+1, len(row), width, ErrFormat)
		}
	}
	var header []string
	first := 0
	for i, c := range rows[0] {
		if _, ok := parseTime(strings.TrimSpace(c)); ok && i == 0 {
			continue
		}
		if _, ok := parseValue(c); !ok {
			header = rows[0]
			first = 1
			break
		}
	}
	body := rows[first:]
	if len(body) == 0 {
		return nil, fmt.Errorf("read csv: a header and no data rows: %w", ErrFormat)
	}
	f := &Frame{}
	valueFrom := 0
	if width > 0 {
		times := make([]time.Time, len(body))
		allTimes, allNumbers := true, true
		for i, row := range body {
			t, ok := parseTime(strings.TrimSpace(row[0]))
			if !ok {
				allTimes = false
			}
			times[i] = t
			if _, ok := parseValue(row[0]); !ok {
				allNumbers = false
			}
		}
		switch {
		case allTimes && !allNumbers:
			f.Times = times
			valueFrom = 1
		case !allNumbers:
			valueFrom = 1 // an index or label column
		}
	}
	if valueFrom >= width {
		return nil, fmt.Errorf("read csv: no value columns: %w", ErrFormat)
	}
	for c := valueFrom; c < width; c++ {
		name := strconv.Itoa(c - valueFrom)
		if header != nil {
			name = strings.TrimSpace(header[c])
		}
		col := make([]float64, len(body))
		for i, row := range body {
			v, ok := parseValue(row[c])
			if !ok {
				return nil, fmt.Errorf("read csv: row %d, column %d (%s): %q is not a number: %w", i+1+first, c+1, name, row[c], ErrFormat)
			}
			col[i] = v
		}
		f.Names = append(f.Names, name)
		f.Columns = append(f.Columns, col)
	}
	if f.Times != nil {
		for i := 1; i < len(f.Times); i++ {
			if !f.Times[i].After(f.Times[i-1]) {
				return nil, fmt.Errorf("read csv: row %d: time %s does not follow %s: %w", i+1+first, f.Times[i].Format(time.RFC3339), f.Times[i-1].Format(time.RFC3339), ErrFormat)
			}
		}
	}
	return f, nil
}

// LoadCSV reads the long table at path (see ReadCSV).
func LoadCSV(path string) (*Frame, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	defer file.Close()
	f, err := ReadCSV(file)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	return f, nil
}

// Series is one named univariate series.
type Series struct {
	Name   string
	Values []float64
}

// ReadWideCSV reads the wide layout of the M4 competition files: a header
// row, then one series per row, its name in the first cell and its values in
// the others, ragged rows padded with empty cells at the end. A gap inside a
// series is missing (NaN); cells must otherwise be numbers.
func ReadWideCSV(r io.Reader) ([]Series, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	if _, err := cr.Read(); err != nil {
		return nil, fmt.Errorf("read wide csv header: %w: %w", err, ErrFormat)
	}
	var out []Series
	for line := 2; ; line++ {
		row, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read wide csv: %w: %w", err, ErrFormat)
		}
		if len(row) == 0 {
			continue
		}
		end := len(row)
		for end > 1 && strings.TrimSpace(row[end-1]) == "" {
			end--
		}
		s := Series{Name: row[0], Values: make([]float64, 0, end-1)}
		for c := 1; c < end; c++ {
			v, ok := parseValue(row[c])
			if !ok {
				return nil, fmt.Errorf("read wide csv: line %d, cell %d: %q is not a number: %w", line, c+1, row[c], ErrFormat)
			}
			s.Values = append(s.Values, v)
		}
		if len(s.Values) > 0 {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("read wide csv: no series: %w", ErrFormat)
	}
	return out, nil
}

// LoadWideCSV reads the wide file at path (see ReadWideCSV).
func LoadWideCSV(path string) ([]Series, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	defer file.Close()
	s, err := ReadWideCSV(file)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	return s, nil
}
