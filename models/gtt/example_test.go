package gtt_test

import (
	"fmt"
	"math"

	"github.com/carryon/carryon/models/gtt"
)

// A plugin loads the embedded checkpoint once and forecasts with it.
func ExampleModel_Forecast() {
	m, _, err := gtt.Default()
	if err != nil {
		panic(err)
	}
	// Two channels of one system, 500 steps each (NaN marks a gap).
	a := make([]float32, 500)
	b := make([]float32, 500)
	for i := range a {
		a[i] = float32(10 + 3*math.Sin(2*math.Pi*float64(i)/24))
		b[i] = float32(0.5 * float64(i%24))
	}
	b[100] = float32(math.NaN())
	fc, err := m.Forecast([][]float32{a, b}, 96)
	if err != nil {
		panic(err)
	}
	fmt.Println(len(fc), len(fc[0]), len(fc[1]))
	// Output: 2 96 96
}
