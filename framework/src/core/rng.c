/* rng.c - xoshiro256** (Blackman and Vigna) seeded through splitmix64,
 * with forked streams, uniform, normal, bounded integers and shuffling.
 * Every draw is a pure function of the 4-word state, so a checkpointed
 * state resumes the exact sequence. */
#include <math.h>

#include "dgm/rng.h"

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

void dgm_rng_seed(dgm_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
    /* splitmix64 is a bijection of a counter: four consecutive outputs are
     * never all zero, the one state xoshiro cannot leave. */
}

void dgm_rng_fork(dgm_rng *child, const dgm_rng *r, uint64_t label)
{
    /* Hash the whole parent state with the label into a fresh splitmix64
     * seed chain; the parent is only read. Distinct labels give unrelated
     * streams, and the same (state, label) always gives the same child. */
    uint64_t x = label ^ 0x6a09e667f3bcc909ull;
    uint64_t h = splitmix64(&x);
    for (int i = 0; i < 4; i++) {
        uint64_t y = r->s[i] ^ rotl(h, 17 * i + 5);
        h ^= splitmix64(&y);
        h = rotl(h, 23) * 0x9e3779b97f4a7c15ull;
    }
    dgm_rng c;
    uint64_t z = h ^ label;
    for (int i = 0; i < 4; i++)
        c.s[i] = splitmix64(&z);
    *child = c; /* child may alias r */
}

uint64_t dgm_rng_u64(dgm_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

float dgm_rng_uniform(dgm_rng *r)
{
    /* top 24 bits: every value is exactly representable, so never 1.0f */
    return (float)(dgm_rng_u64(r) >> 40) * 0x1.0p-24f;
}

double dgm_rng_uniform_f64(dgm_rng *r)
{
    return (double)(dgm_rng_u64(r) >> 11) * 0x1.0p-53;
}

float dgm_rng_normal(dgm_rng *r)
{
    /* Box-Muller, cosine branch only: exactly two u64 draws per normal and
     * no cached second value, so the state alone fixes the sequence (we
     * prefer that to the speed of keeping the sine half). u1 is in (0, 1)
     * (half a step off zero) so the log is finite. */
    double u1 = ((double)(dgm_rng_u64(r) >> 11) + 0.5) * 0x1.0p-53;
    double u2 = (double)(dgm_rng_u64(r) >> 11) * 0x1.0p-53;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

uint64_t dgm_rng_below(dgm_rng *r, uint64_t n)
{
    /* Lemire's multiply-shift with rejection of the biased low range.
     * n == 0 has no valid answer; return 0 rather than loop. */
    if (n == 0)
        return 0;
    unsigned __int128 m = (unsigned __int128)dgm_rng_u64(r) * n;
    uint64_t lo = (uint64_t)m;
    if (lo < n) {
        uint64_t threshold = (0 - n) % n; /* 2^64 mod n */
        while (lo < threshold) {
            m = (unsigned __int128)dgm_rng_u64(r) * n;
            lo = (uint64_t)m;
        }
    }
    return (uint64_t)(m >> 64);
}

void dgm_rng_shuffle(dgm_rng *r, int64_t *idx, int64_t n)
{
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)dgm_rng_below(r, (uint64_t)i + 1);
        int64_t t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}
