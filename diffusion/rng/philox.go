package rng

// Philox4x32-10 (Salmon, Moraes, Dror and Shaw, "Parallel random numbers:
// as easy as 1, 2, 3", SC 2011; the Random123 library), the counter-based
// generator behind curand's curandStatePhilox4_32_10_t and so behind
// torch's CUDA generator (curand_kernel.h / curand_philox4x32_x.h; ATen's
// own copy is aten/src/ATen/core/PhiloxRNGEngine.h).
const (
	philoxM0 = 0xD2511F53 // round multipliers
	philoxM1 = 0xCD9E8D57
	philoxW0 = 0x9E3779B9 // key increments: golden ratio, sqrt(3)-1
	philoxW1 = 0xBB67AE85
)

// philox4x32 returns the Philox4x32 block of ctr under key after rounds
// rounds (10 for Philox4x32-10). Each round multiplies words 0 and 2 by
// M0 and M1 and mixes the high halves with words 3 and 1 and the round
// key; the key is bumped by W0, W1 between rounds.
func philox4x32(ctr [4]uint32, key [2]uint32, rounds int) [4]uint32 {
	for r := 0; r < rounds; r++ {
		if r > 0 {
			key[0] += philoxW0
			key[1] += philoxW1
		}
		p0 := uint64(philoxM0) * uint64(ctr[0])
		p1 := uint64(philoxM1) * uint64(ctr[2])
		ctr = [4]uint32{
			uint32(p1>>32) ^ ctr[1] ^ key[0],
			uint32(p1),
			uint32(p0>>32) ^ ctr[3] ^ key[1],
			uint32(p0),
		}
	}
	return ctr
}
