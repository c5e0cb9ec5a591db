package main

import (
	"errors"
	"strconv"
	"strings"
	"time"
)

// daysValue is a duration flag that also takes days: 90d, 1d12h, 36h.
type daysValue struct{ dst *time.Duration }

func (d daysValue) String() string { return d.dst.String() }
func (d daysValue) Type() string   { return "duration" }

func (d daysValue) Set(s string) error {
	v, err := parseDays(s)
	if err != nil {
		return err
	}
	*d.dst = v
	return nil
}

// errDays says what a daysValue wants, without what it got.
var errDays = errors.New("want a duration such as 90d, 36h or 1d12h, not negative")

// parseDays parses a Go duration optionally preceded by whole days ("90d").
func parseDays(s string) (time.Duration, error) {
	var days time.Duration
	if i := strings.IndexByte(s, 'd'); i > 0 {
		n, err := strconv.Atoi(s[:i])
		if err != nil || n < 0 || n > 100*365 {
			return 0, errDays
		}
		days, s = time.Duration(n)*24*time.Hour, s[i+1:]
		if s == "" {
			return days, nil
		}
	}
	rest, err := time.ParseDuration(s)
	if err != nil || rest < 0 {
		return 0, errDays
	}
	return days + rest, nil
}
