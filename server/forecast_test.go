package server

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
)

// seriesJSON returns a JSON list of n values of a sine.
func seriesJSON(n int, period float64) string {
	v := make([]string, n)
	for i := range v {
		v[i] = fmt.Sprintf("%.4f", 10+3*math.Sin(2*math.Pi*float64(i)/period))
	}
	return "[" + strings.Join(v, ",") + "]"
}

// TestForecastRequestValidation checks that every malformed request is
// refused with a message and param naming the offending field.
func TestForecastRequestValidation(t *testing.T) {
	ok := seriesJSON(40, 12)
	long := "[" + strings.Repeat("1,", maxSeriesSteps) + "1]"
	ts := make([]string, 40)
	for i := range ts {
		ts[i] = fmt.Sprintf("%q", fmt.Sprintf("2024-01-01T%02d:00:00Z", i%24))
	}
	cases := []struct {
		name, body, param, msg string
	}{
		{"not json", `{`, "", "not a JSON object"},
		{"no model", `{"series":[{"target":` + ok + `}],"horizon":5}`, "model", "model is required"},
		{"model not string", `{"model":3,"series":[{"target":` + ok + `}],"horizon":5}`, "model", "non-empty string"},
		{"no horizon", `{"model":"m","series":[{"target":` + ok + `}]}`, "horizon", "horizon"},
		{"zero horizon", `{"model":"m","series":[{"target":` + ok + `}],"horizon":0}`, "horizon", "outside [1, 4096]"},
		{"negative horizon", `{"model":"m","series":[{"target":` + ok + `}],"horizon":-3}`, "horizon", "outside"},
		{"huge horizon", `{"model":"m","series":[{"target":` + ok + `}],"horizon":100000}`, "horizon", "outside [1, 4096]"},
		{"fractional horizon", `{"model":"m","series":[{"target":` + ok + `}],"horizon":2.5}`, "horizon", "integer"},
		{"no series", `{"model":"m","horizon":5}`, "series", "series is required"},
		{"series not list", `{"model":"m","series":{},"horizon":5}`, "series", "list of objects"},
		{"empty series", `{"model":"m","series":[],"horizon":5}`, "series", "empty"},
		{"series item not object", `{"model":"m","series":[{"target":` + ok + `},5],"horizon":5}`, "series[1]", "must be an object"},
		{"no target", `{"model":"m","series":[{"target":` + ok + `},{"name":"b"}],"horizon":5}`, "series[1].target", "required"},
		{"empty target", `{"model":"m","series":[{"target":[]}],"horizon":5}`, "series[0].target", "empty"},
		{"too short", `{"model":"m","series":[{"target":[1,2,3]}],"horizon":5}`, "series[0].target", "at least 16"},
		{"too long", `{"model":"m","series":[{"target":` + long + `}],"horizon":5}`, "series[0].target", "limit is 100000"},
		{"string value", `{"model":"m","series":[{"target":` + ok + `},{"target":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,"x",18]}],"horizon":5}`, "series[1].target[16]", "not a number"},
		{"bool value", `{"model":"m","series":[{"target":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,true]}],"horizon":5}`, "series[0].target[17]", "not a number"},
		{"out of range", `{"model":"m","series":[{"target":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,1e300]}],"horizon":5}`, "series[0].target[17]", "float32 range"},
		{"nested in 1-D", `{"model":"m","series":[{"target":[1,[2],3]}],"horizon":5}`, "series[0].target[1]", "got a list"},
		{"ragged", `{"model":"m","series":[{"target":[` + ok + `,[1,2,3]]}],"horizon":5}`, "series[0].target[1]", "has 3 steps"},
		{"bad in 2-D", `{"model":"m","series":[{"target":[` + ok + `,[1,2,"z"]]}],"horizon":5}`, "series[0].target[1][2]", "not a number"},
		{"all missing", `{"model":"m","series":[{"target":[null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null]}],"horizon":5}`, "series[0].target", "no observed value"},
		{"all missing channel", `{"model":"m","series":[{"target":[[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16],[null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null]]}],"horizon":5}`, "series[0].target[1]", "no observed value"},
		{"timestamps count", `{"model":"m","series":[{"target":` + ok + `,"timestamps":["2024-01-01"]}],"horizon":5}`, "series[0].timestamps", "1 entries"},
		{"timestamps order", `{"model":"m","series":[{"target":` + ok + `,"timestamps":[` + strings.Join(ts, ",") + `]}],"horizon":5}`, "series[0].timestamps[24]", "not after"},
		{"timestamp format", `{"model":"m","series":[{"target":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16],"timestamps":["x",2,3,4,5,6,7,8,9,10,11,12,13,14,15,16]}],"horizon":5}`, "series[0].timestamps[0]", "RFC 3339"},
		{"timestamp year", `{"model":"m","series":[{"target":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16],"timestamps":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,99999999999]}],"horizon":5}`, "series[0].timestamps[15]", "years 1700 to 2200"},
		{"past covariate length", `{"model":"m","series":[{"target":` + ok + `,"past_covariates":[[1,2]]}],"horizon":5}`, "series[0].past_covariates[0]", "has 2 steps"},
		{"future covariate length", `{"model":"m","series":[{"target":` + ok + `,"future_covariates":` + ok + `}],"horizon":5}`, "series[0].future_covariates[0]", "plus the horizon"},
		{"quantile range", `{"model":"m","series":[{"target":` + ok + `}],"horizon":5,"quantiles":[0.1,1.5]}`, "quantiles[1]", "outside (0, 1)"},
		{"quantile zero", `{"model":"m","series":[{"target":` + ok + `}],"horizon":5,"quantiles":[0]}`, "quantiles[0]", "outside (0, 1)"},
		{"quantile type", `{"model":"m","series":[{"target":` + ok + `}],"horizon":5,"quantiles":["a"]}`, "quantiles[0]", "must be a number"},
		{"quantile twice", `{"model":"m","series":[{"target":` + ok + `}],"horizon":5,"quantiles":[0.5,0.5]}`, "quantiles[1]", "twice"},
		{"quantiles not list", `{"model":"m","series":[{"target":` + ok + `}],"horizon":5,"quantiles":0.5}`, "quantiles", "list of levels"},
		{"frequency", `{"model":"m","series":[{"target":` + ok + `}],"horizon":5,"frequency":"fortnightly"}`, "frequency", "frequency"},
		{"guard value", `{"model":"m","series":[{"target":` + ok + `}],"horizon":5,"guard":"always"}`, "guard", `"auto" (the default), "walk" and "off"`},
		{"guard case", `{"model":"m","series":[{"target":` + ok + `}],"horizon":5,"guard":"Off"}`, "guard", "not one of"},
		{"guard type", `{"model":"m","series":[{"target":` + ok + `}],"horizon":5,"guard":false}`, "guard", "must be a string"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, e := parseForecastRequest([]byte(c.body))
			if e == nil {
				t.Fatal("accepted")
			}
			if e.Status != 400 {
				t.Errorf("status %d", e.Status)
			}
			param := ""
			if e.Param != nil {
				param = *e.Param
			}
			if param != c.param || !strings.Contains(e.Message, c.msg) {
				t.Errorf("param %q message %q; want param %q and %q", param, e.Message, c.param, c.msg)
			}
			if c.param != "" && !strings.Contains(e.Message, c.param) {
				t.Errorf("message %q does not name %s", e.Message, c.param)
			}
		})
	}
}

func TestForecastRequestAccepted(t *testing.T) {
	body := `{"model":"gtt-small","horizon":3,"quantiles":[0.9,0.1],"frequency":"1h","series":[
		{"name":"a","target":[1,null,3,"NaN",5,6,7,8,9,10,11,12,13,14,15,16]},
		{"target":[[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16],[2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2]],
		 "past_covariates":[0,1,0,1,0,1,0,1,0,1,0,1,0,1,0,1],
		 "future_covariates":[[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1,1,1]],
		 "timestamps":[1700000000,1700003600,1700007200,1700010800,1700014400,1700018000,1700021600,1700025200,1700028800,1700032400,1700036000,1700039600,1700043200,1700046800,1700050400,1700054000]}]}`
	job, e := parseForecastRequest([]byte(body))
	if e != nil {
		t.Fatal(e.Message)
	}
	if fmt.Sprint(job.quantiles) != "[0.1 0.9]" || job.horizon != 3 || len(job.items) != 2 {
		t.Fatalf("%+v", job)
	}
	a, b := job.items[0], job.items[1]
	if a.name != "a" || b.name != "1" || a.twoD || !b.twoD || a.targets != 1 || b.targets != 2 {
		t.Errorf("names/shapes: %+v %+v", a, b)
	}
	if !math.IsNaN(float64(a.item.Series[0][1])) || !math.IsNaN(float64(a.item.Series[0][3])) {
		t.Errorf("missing values: %v", a.item.Series[0][:4])
	}
	if len(b.item.Series) != 3 || len(b.item.Known) != 1 || len(b.item.Known[0]) != 19 || len(b.timestamps) != 16 {
		t.Errorf("covariates: %d series channels, %d known", len(b.item.Series), len(b.item.Known))
	}
	ft := futureTimes(b.timestamps, job.frequency, 3)
	if ft[0].Unix() != 1700054000+3600 || ft[2].Unix() != 1700054000+3*3600 {
		t.Errorf("future times %v", ft)
	}
	// The guard: absent, null, "auto" and "seasonal" (its synonym) go to
	// the plugin as "" (its default); the others as given.
	if job.guard != "" {
		t.Errorf("no guard: %q", job.guard)
	}
	for value, want := range map[string]string{`null`: "", `"auto"`: "", `"seasonal"`: "", `"walk"`: "walk", `"off"`: "off"} {
		job, e := parseForecastRequest([]byte(`{"model":"m","horizon":3,"guard":` + value + `,"series":[{"target":` + seriesJSON(20, 5) + `}]}`))
		if e != nil {
			t.Fatalf("guard %s: %s", value, e.Message)
		}
		if job.guard != want {
			t.Errorf("guard %s: %q, want %q", value, job.guard, want)
		}
	}
	// NaN goes out as null.
	out, _ := json.Marshal(jsonFloats{1, float32(math.NaN()), 2.5})
	if string(out) != "[1,null,2.5]" {
		t.Errorf("%s", out)
	}
}

// BenchmarkParseForecastRequest decodes and validates a request of 512
// series of 1024 steps (about 4 MB of JSON).
func BenchmarkParseForecastRequest(b *testing.B) {
	items := make([]string, 512)
	for i := range items {
		items[i] = `{"target":` + seriesJSON(1024, float64(12+i%40)) + `}`
	}
	body := []byte(`{"model":"gtt-small","horizon":96,"series":[` + strings.Join(items, ",") + `]}`)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, e := parseForecastRequest(body); e != nil {
			b.Fatal(e.Message)
		}
	}
}
