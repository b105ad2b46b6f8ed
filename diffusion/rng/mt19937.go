package rng

// mt19937 is the 32-bit Mersenne Twister as ATen implements it
// (aten/src/ATen/core/MT19937RNGEngine.h, itself Matsumoto and Nishimura's
// mt19937ar-cok.c): seeded from the low 32 bits of a uint64 seed with the
// 2002 init_genrand recurrence, regenerating all 624 words at once.
type mt19937 struct {
	state [mtN]uint32
	next  int // index of the next word of state to temper; mtN: regenerate first
}

const (
	mtN       = 624
	mtM       = 397
	mtMatrixA = 0x9908b0df
	mtUpper   = 0x80000000
	mtLower   = 0x7fffffff
)

// seed resets the engine as at::mt19937(seed) does. Only seed & 0xffffffff
// enters the state (init_with_uint32), so manual_seed(s) and
// manual_seed(s + 1<<32) give the same stream.
func (m *mt19937) seed(seed uint64) {
	m.state[0] = uint32(seed)
	for j := 1; j < mtN; j++ {
		prev := m.state[j-1]
		m.state[j] = 1812433253*(prev^(prev>>30)) + uint32(j)
	}
	m.next = mtN
}

// twist regenerates the whole state (next_state in ATen).
func (m *mt19937) twist() {
	s := &m.state
	mix := func(u, v uint32) uint32 {
		y := (u&mtUpper | v&mtLower) >> 1
		if v&1 != 0 {
			y ^= mtMatrixA
		}
		return y
	}
	j := 0
	for ; j < mtN-mtM; j++ {
		s[j] = s[j+mtM] ^ mix(s[j], s[j+1])
	}
	for ; j < mtN-1; j++ {
		s[j] = s[j+mtM-mtN] ^ mix(s[j], s[j+1])
	}
	s[mtN-1] = s[mtM-1] ^ mix(s[mtN-1], s[0])
	m.next = 0
}

// uint32 returns the next tempered word (CPUGeneratorImpl::random).
func (m *mt19937) uint32() uint32 {
	if m.next >= mtN {
		m.twist()
	}
	y := m.state[m.next]
	m.next++
	y ^= y >> 11
	y ^= y << 7 & 0x9d2c5680
	y ^= y << 15 & 0xefc60000
	y ^= y >> 18
	return y
}

// uint64 returns two words, the first one high, as
// CPUGeneratorImpl::random64 does (detail::make64BitsFrom32Bits(hi, lo)).
func (m *mt19937) uint64() uint64 {
	hi := m.uint32()
	lo := m.uint32()
	return uint64(hi)<<32 | uint64(lo)
}
