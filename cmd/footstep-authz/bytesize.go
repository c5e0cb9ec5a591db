package main

import (
	"errors"
	"math"
	"strings"

	"github.com/dustin/go-humanize"
)

// byteSize is a flag value in bytes, written as a number with an optional
// unit: B, KiB, MiB, GiB (powers of 1024) or kB, MB, GB (powers of 1000).
type byteSize int64

func (b *byteSize) Set(s string) error {
	n, err := humanize.ParseBytes(strings.TrimSpace(s))
	if err != nil || n == 0 || n > math.MaxInt64/2 {
		return errors.New("want a positive size such as 256MiB")
	}
	*b = byteSize(n)
	return nil
}

func (b *byteSize) String() string {
	if b == nil {
		return ""
	}
	return strings.ReplaceAll(humanize.IBytes(uint64(*b)), " ", "")
}
