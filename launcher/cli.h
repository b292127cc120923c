// The zo2 command line: subcommands, each with its Boost.Program_options description.
#pragma once

namespace zo2::cli {

int run(int argc, char** argv);
// After a fatal error on one rank: end the whole job (MPI_Abort) so no rank waits forever.
void abort_peers();

}  // namespace zo2::cli
