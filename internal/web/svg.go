package web

import (
	"fmt"
	"html/template"
	"strings"
	"time"
)

// TrendPoint is one sample of the trend chart.
type TrendPoint struct {
	At      time.Time
	Open    int
	Fixable int
}

// TrendChart draws open and fixable findings over time as an inline SVG
// line chart. Everything in it is computed here; nothing is taken from
// user input, and the text it contains is dates and numbers.
func TrendChart(points []TrendPoint, width, height int) template.HTML {
	const left, right, top, bottom = 44, 12, 12, 26
	pw, ph := float64(width-left-right), float64(height-top-bottom)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="trend" role="img" aria-label="Open fixable findings over time" viewBox="0 0 %d %d" width="%d" height="%d" xmlns="http://www.w3.org/2000/svg">`, width, height, width, height)
	if len(points) == 0 {
		fmt.Fprintf(&b, `<text x="%d" y="%d" class="axis">no data yet</text></svg>`, left, height/2)
		return template.HTML(b.String())
	}
	maxY := 1
	for _, p := range points {
		if p.Open > maxY {
			maxY = p.Open
		}
	}
	maxY = niceCeil(maxY)
	x := func(i int) float64 {
		if len(points) == 1 {
			return float64(left) + pw/2
		}
		return float64(left) + pw*float64(i)/float64(len(points)-1)
	}
	y := func(v int) float64 { return float64(top) + ph - ph*float64(v)/float64(maxY) }
	// Grid and Y axis labels.
	for i := 0; i <= 4; i++ {
		v := maxY * i / 4
		fmt.Fprintf(&b, `<line class="grid" x1="%d" x2="%d" y1="%.1f" y2="%.1f"/>`, left, width-right, y(v), y(v))
		fmt.Fprintf(&b, `<text class="axis" x="%d" y="%.1f" text-anchor="end">%d</text>`, left-6, y(v)+4, v)
	}
	line := func(class string, val func(TrendPoint) int) {
		var pts []string
		for i, p := range points {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(i), y(val(p))))
		}
		fmt.Fprintf(&b, `<polyline class="%s" fill="none" points="%s"/>`, class, strings.Join(pts, " "))
	}
	line("open", func(p TrendPoint) int { return p.Open })
	line("fixable", func(p TrendPoint) int { return p.Fixable })
	last := points[len(points)-1]
	fmt.Fprintf(&b, `<circle class="fixable" cx="%.1f" cy="%.1f" r="3"><title>%s: %d fixable, %d open</title></circle>`,
		x(len(points)-1), y(last.Fixable), last.At.UTC().Format("2006-01-02"), last.Fixable, last.Open)
	// X axis: first, middle and last dates.
	for _, i := range []int{0, len(points) / 2, len(points) - 1} {
		anchor := "middle"
		if i == 0 {
			anchor = "start"
		} else if i == len(points)-1 {
			anchor = "end"
		}
		fmt.Fprintf(&b, `<text class="axis" x="%.1f" y="%d" text-anchor="%s">%s</text>`, x(i), height-6, anchor, points[i].At.UTC().Format("Jan 02"))
	}
	fmt.Fprintf(&b, `<g class="legend"><rect class="fixable" x="%d" y="%d" width="10" height="3"/><text x="%d" y="%d">fixable</text>`, left+8, top+2, left+22, top+7)
	fmt.Fprintf(&b, `<rect class="open" x="%d" y="%d" width="10" height="3"/><text x="%d" y="%d">open</text></g>`, left+80, top+2, left+94, top+7)
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// niceCeil rounds up to 1, 2 or 5 times a power of ten, divisible by 4
// steps where it can.
func niceCeil(v int) int {
	if v <= 4 {
		return 4
	}
	p := 1
	for p*10 < v {
		p *= 10
	}
	for _, m := range []int{1, 2, 4, 5, 8, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}
