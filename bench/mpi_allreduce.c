/* mpi_allreduce.c - MPI_Allreduce (float sum) latency and bandwidth from
 * 4 B to 64 MB, and how much of a non-blocking allreduce hides behind
 * compute: the constants of the alpha-beta model of
 * docs/distributed-performance.md.
 *
 *   mpirun -np 2 bench/mpi_allreduce [MAX_BYTES]
 *
 * Prints one line per size (bytes, median microseconds, algorithm
 * bandwidth bytes/s, ring bus bandwidth 2(p-1)/p * bytes / t), then the
 * least-squares fit t = a + b * bytes over the sizes, then the overlap of a
 * 4 MB MPI_Iallreduce with a compute loop that calls MPI_Test between
 * chunks (as dgm's gradient buckets do between parameters). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mpi.h>

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median seconds of one allreduce of n floats over reps repetitions;
 * *fastest (if given) the fastest: on a loaded machine the median measures
 * the scheduler, the fastest what MPI costs when both ranks run. */
static double time_allreduce(float *buf, int n, int reps, double *fastest)
{
    double *t = malloc(sizeof *t * (size_t)reps);
    for (int r = 0; r < reps; r++) {
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = MPI_Wtime();
        MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        t[r] = MPI_Wtime() - t0;
    }
    /* every rank reports the slowest rank's time */
    MPI_Allreduce(MPI_IN_PLACE, t, reps, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    qsort(t, (size_t)reps, sizeof *t, cmp_double);
    double m = t[reps / 2];
    if (fastest)
        *fastest = t[0];
    free(t);
    return m;
}

/* A compute loop of about `chunks` pieces; calls MPI_Test between pieces
 * when req is given. Returns a value so the work is not optimised away. */
static double compute(double *w, int n, int chunks, MPI_Request *req)
{
    double s = 0;
    int flag;
    for (int c = 0; c < chunks; c++) {
        for (int i = 0; i < n; i++)
            s += w[i] = sin(w[i] + 1e-3 * c);
        if (req && *req != MPI_REQUEST_NULL)
            MPI_Test(req, &flag, MPI_STATUS_IGNORE);
    }
    return s;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    long long max_bytes = argc > 1 ? atoll(argv[1]) : 64ll << 20;
    float *buf = calloc((size_t)max_bytes / 4 + 1, sizeof *buf);
    if (!buf) {
        fprintf(stderr, "mpi_allreduce: out of memory\n");
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    if (rank == 0)
        printf("# MPI_Allreduce float sum, %d ranks\n"
               "# bytes median_us fastest_us busbw_MBps(fastest)\n",
               size);
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    int k = 0;
    for (long long bytes = 4; bytes <= max_bytes; bytes *= 4) {
        int n = (int)(bytes / 4);
        int reps = bytes <= (1 << 16) ? 50 : bytes <= (4 << 20) ? 20 : 6;
        time_allreduce(buf, n, 3, NULL); /* warm up */
        double med, t;
        med = time_allreduce(buf, n, reps, &t);
        double bus = 2.0 * (size - 1) / size * (double)bytes / t;
        if (rank == 0)
            printf("%lld %.2f %.2f %.1f\n", bytes, med * 1e6, t * 1e6,
                   bus / 1e6);
        sx += (double)bytes;
        sy += t;
        sxx += (double)bytes * (double)bytes;
        sxy += (double)bytes * t;
        k++;
    }
    double b = (k * sxy - sx * sy) / (k * sxx - sx * sx);
    double a = (sy - b * sx) / k;
    if (rank == 0)
        printf("# fit of the fastest: t = a + b * bytes: a = %.3g s, "
               "b = %.3g s/B "
               "(%.1f MB/s)\n",
               a, b, 1e-6 / b);

    /* Overlap: compute alone, the 4 MB allreduce alone, then both. */
    int n = 1 << 20, wn = 1 << 14, chunks = 200;
    double *w = calloc((size_t)wn, sizeof *w), sink = 0;
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime();
    sink += compute(w, wn, chunks, NULL);
    double tc = MPI_Wtime() - t0;
    double tr = time_allreduce(buf, n, 10, NULL);
    MPI_Request req;
    MPI_Barrier(MPI_COMM_WORLD);
    t0 = MPI_Wtime();
    MPI_Iallreduce(MPI_IN_PLACE, buf, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD,
                   &req);
    sink += compute(w, wn, chunks, &req);
    MPI_Wait(&req, MPI_STATUS_IGNORE);
    double tb = MPI_Wtime() - t0;
    double v[3] = {tc, tr, tb};
    MPI_Allreduce(MPI_IN_PLACE, v, 3, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    /* hidden: how much of the allreduce did not add to the compute */
    double hidden = (v[0] + v[1] - v[2]) / v[1];
    hidden = hidden < 0 ? 0 : hidden > 1 ? 1 : hidden;
    if (rank == 0)
        printf("# overlap: compute %.3f ms, allreduce 4 MB %.3f ms, both "
               "%.3f ms: %.0f%% of the allreduce hidden (%g)\n",
               v[0] * 1e3, v[1] * 1e3, v[2] * 1e3, 100 * hidden,
               sink > 0 ? 1.0 : 0.0);
    free(w);
    free(buf);
    MPI_Finalize();
    return 0;
}
