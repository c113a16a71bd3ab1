/* SPDX-License-Identifier: MIT */
/* `wgate peer add|list|remove`: client management by editing the configuration file. */
#ifndef WGT_GATEWAY_CLI_PEER_H
#define WGT_GATEWAY_CLI_PEER_H

/*
 * argv[0] is "peer". Returns the process's exit status: 0, 1 for a failure
 * (one line on stderr naming the cause), 2 for a bad command line.
 */
int wgt_cli_peer_main(int argc, char **argv);

#endif
