// Package cache keeps key and account states in memory (work in progress).
package cache
