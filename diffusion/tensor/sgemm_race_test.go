//go:build race

package tensor

// The race detector makes sync.Pool drop items at random, so allocation
// counts mean nothing under it.
func init() { raceEnabled = true }
