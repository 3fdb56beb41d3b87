package tsdata

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func TestReadCSVWithDatesAndHeader(t *testing.T) {
	in := "date,a,b\n2020-01-01 00:00:00,1,2.5\n2020-01-01 01:00:00,,3\n2020-01-01 02:00:00,NaN,-4e-1\n"
	f, err := ReadCSV(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(f.Names, ","); got != "a,b" {
		t.Fatalf("names %q, want a,b", got)
	}
	if f.Len() != 3 || len(f.Times) != 3 {
		t.Fatalf("%d rows, %d times; want 3 and 3", f.Len(), len(f.Times))
	}
	if !f.Times[1].Equal(time.Date(2020, 1, 1, 1, 0, 0, 0, time.UTC)) {
		t.Fatalf("time of row 2: %s", f.Times[1])
	}
	if f.Columns[0][0] != 1 || !math.IsNaN(f.Columns[0][1]) || !math.IsNaN(f.Columns[0][2]) || f.Columns[1][2] != -0.4 {
		t.Fatalf("values %v", f.Columns)
	}
}

func TestReadCSVLayouts(t *testing.T) {
	cases := []struct {
		name, in    string
		cols, rows  int
		times       bool
		firstHeader string
	}{
		{"values only, no header", "1,2\n3,4\n5,6\n", 2, 3, false, "0"},
		{"dates without header", "1990/1/1 0:00,0.5\n1990/1/2 0:00,0.6\n", 1, 2, true, "0"},
		{"monthly dates, quoted header", "\"Month\",\"Sales\"\n\"1949-01\",112\n\"1949-02\",118\n", 1, 2, true, "Sales"},
		{"label column dropped", "\"Month\",\"Sales\"\n\"1-01\",266.0\n\"1-02\",145.9\n", 1, 2, false, "Sales"},
	}
	for _, c := range cases {
		f, err := ReadCSV(strings.NewReader(c.in))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if len(f.Columns) != c.cols || f.Len() != c.rows || (f.Times != nil) != c.times || f.Names[0] != c.firstHeader {
			t.Errorf("%s: %d cols x %d rows, times %v, first name %q", c.name, len(f.Columns), f.Len(), f.Times != nil, f.Names[0])
		}
	}
}

func TestReadCSVErrors(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"empty", "", "no rows"},
		{"header only", "a,b\n", "no data rows"},
		{"ragged row", "a,b\n1,2\n3\n", "row 3 has 1 cells"},
		{"not a number", "a,b\n1,2\n3,x7\n", `row 3, column 2 (b): "x7" is not a number`},
		{"time going back", "t,a\n2020-01-02,1\n2020-01-01,2\n", "does not follow"},
		{"bad quoting", "a,b\n\"1,2\n", "read csv"},
	}
	for _, c := range cases {
		_, err := ReadCSV(strings.NewReader(c.in))
		if err == nil || !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q and wrapping ErrFormat", c.name, err, c.want)
		}
	}
}

func TestReadWideCSV(t *testing.T) {
	in := `"V1","V2","V3","V4"
"H1","1","2","3"
"H2","4","",""
"H3","5","","6"
`
	s, err := ReadWideCSV(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(s) != 3 || s[0].Name != "H1" || len(s[0].Values) != 3 || len(s[1].Values) != 1 || len(s[2].Values) != 3 || !math.IsNaN(s[2].Values[1]) {
		t.Fatalf("series %+v", s)
	}
	if _, err := ReadWideCSV(strings.NewReader("\"V1\",\"V2\"\n\"H1\",\"abc\"\n")); err == nil || !strings.Contains(err.Error(), "line 2, cell 2") {
		t.Errorf("non-numeric cell: %v", err)
	}
	if _, err := ReadWideCSV(strings.NewReader("\"V1\"\n")); !errors.Is(err, ErrFormat) {
		t.Errorf("no series: %v", err)
	}
}
