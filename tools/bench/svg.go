package bench

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"
)

// series is one line of a chart.
type series struct {
	name string
	at   []time.Duration
	v    []float64
}

// lineChart draws series against time as an SVG line chart, with its title and y unit.
func lineChart(title, unit string, ss []series) []byte {
	const w, h, left, right, top, bottom = 760.0, 320.0, 70.0, 170.0, 30.0, 40.0
	var tMax, vMax float64
	for _, s := range ss {
		for i := range s.v {
			tMax, vMax = math.Max(tMax, s.at[i].Seconds()), math.Max(vMax, s.v[i])
		}
	}
	tMax, vMax = math.Max(tMax, 1), niceCeil(math.Max(vMax, 1))
	x := func(t time.Duration) float64 { return left + t.Seconds()/tMax*(w-left-right) }
	y := func(v float64) float64 { return h - bottom - v/vMax*(h-top-bottom) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="sans-serif" font-size="12">`+"\n", w, h)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/><text x="%.0f" y="18" font-size="14">%s</text>`+"\n", left, title)
	for i := 0; i <= 4; i++ { // y grid and labels
		v := vMax * float64(i) / 4
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#ddd"/><text x="%.1f" y="%.1f" text-anchor="end">%s</text>`+"\n",
			left, w-right, y(v), y(v), left-6, y(v)+4, compact(v))
	}
	for i := 0; i <= 5; i++ { // x labels
		t := time.Duration(float64(time.Second) * tMax * float64(i) / 5)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%ds</text>`+"\n", x(t), h-bottom+16, int(t.Seconds()))
	}
	fmt.Fprintf(&b, `<text x="12" y="%.1f" transform="rotate(-90 12 %.1f)" text-anchor="middle">%s</text>`+"\n", (h)/2, h/2, unit)
	colours := []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#17becf"}
	for i, s := range ss {
		c := colours[i%len(colours)]
		pts := make([]string, len(s.v))
		for j := range s.v {
			pts[j] = fmt.Sprintf("%.1f,%.1f", x(s.at[j]), y(s.v[j]))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`+"\n", c, strings.Join(pts, " "))
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="12" height="3" fill="%s"/><text x="%.1f" y="%.1f">%s</text>`+"\n",
			w-right+12, top+float64(i)*18+4, c, w-right+30, top+float64(i)*18+9, s.name)
	}
	b.WriteString("</svg>\n")
	return []byte(b.String())
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

// compact writes 12000 as 12k.
func compact(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.4gM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.4gk", v/1e3)
	}
	return fmt.Sprintf("%.4g", v)
}

// writeBurstPlots draws the burst's backlog and resident sets into the output directory.
func (r *run) writeBurstPlots(b *ScaleBurst) {
	backlog := []series{{name: "outbox rows"}, {name: "generate queue"}, {name: "open jobs"}}
	rss := map[string]*series{}
	for _, s := range b.Samples {
		backlog[0].at, backlog[0].v = append(backlog[0].at, s.At), append(backlog[0].v, float64(s.Outbox))
		backlog[1].at, backlog[1].v = append(backlog[1].at, s.At), append(backlog[1].v, float64(s.Queue))
		backlog[2].at, backlog[2].v = append(backlog[2].at, s.At), append(backlog[2].v, float64(s.Open))
		for name, v := range s.RSS {
			if rss[name] == nil {
				rss[name] = &series{name: name}
			}
			rss[name].at, rss[name].v = append(rss[name].at, s.At), append(rss[name].v, float64(v)/1e6)
		}
	}
	var rs []series
	for _, name := range slices.Sorted(maps.Keys(rss)) {
		rs = append(rs, *rss[name])
	}
	for name, svg := range map[string][]byte{
		"scale-backlog.svg": lineChart(fmt.Sprintf("Burst of %d jobs: enqueued with no worker, then drained by 4 workers × 16", b.Jobs), "messages", backlog),
		"scale-rss.svg":     lineChart("Resident set of every process during the burst", "MB", rs),
	} {
		r.writeFile(name, svg)
	}
}
