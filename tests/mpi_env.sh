# mpi_env.sh - sourced by the MPI tests: what Open MPI 4.1 needs to run
# here (root in a container, 2 cores shared with other work).
# root: mpirun refuses without both of these
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# more ranks than cores, and ranks that yield the core while they wait
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_mpi_yield_when_idle=1
# one node: shared memory and self only (no network probing), and no
# single-copy (CMA needs ptrace rights a container may not grant)
export OMPI_MCA_btl=self,vader OMPI_MCA_btl_vader_single_copy_mechanism=none
export OMPI_MCA_pml=ob1 OMPI_MCA_osc=^ucx OMPI_MCA_mtl=^ofi
# keep components loaded at exit, so a sanitizer can name their frames
export OMPI_MCA_mca_base_component_disable_dlclose=1 PMIX_MCA_mca_base_component_disable_dlclose=1
# sanitizer builds: Open MPI keeps its own allocations until exit
export LSAN_OPTIONS="${LSAN_OPTIONS:+$LSAN_OPTIONS:}suppressions=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/mpi_lsan.supp"
# full stacks at malloc, so those suppressions see the Open MPI frames
# below the components' (the fast unwinder stops at the first library
# built without frame pointers)
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}fast_unwind_on_malloc=0"
