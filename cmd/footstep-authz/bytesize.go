package main

import (
	"errors"
	"strconv"
	"strings"
)

// byteSize is a flag value in bytes, written as a number with an optional
// unit: B, KiB, MiB, GiB (or KB, MB, GB, taken as powers of 1024 too).
type byteSize int64

var units = []struct {
	suffix string
	shift  uint
}{
	{"GiB", 30}, {"MiB", 20}, {"KiB", 10}, {"GB", 30}, {"MB", 20}, {"KB", 10}, {"G", 30}, {"M", 20}, {"K", 10}, {"B", 0},
}

func (b *byteSize) Set(s string) error {
	num, shift := s, uint(0)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			num, shift = strings.TrimSuffix(s, u.suffix), u.shift
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
	if err != nil || n <= 0 || n > (1<<62)>>shift {
		return errors.New("want a positive size such as 256MiB")
	}
	*b = byteSize(n << shift)
	return nil
}

func (b *byteSize) String() string {
	if b == nil {
		return ""
	}
	n := int64(*b)
	for _, u := range units[:3] {
		if n >= 1<<u.shift && n%(1<<u.shift) == 0 {
			return strconv.FormatInt(n>>u.shift, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}
