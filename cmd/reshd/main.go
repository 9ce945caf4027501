// Command reshd serves resh sessions: it runs each client's command as the
// user running reshd, and relays lcat/ltee transfers to the client.
//
//	reshd [-listen ADDR] [-master [-local N]] [-join MASTER[:PORT] [-name NAME]] [-max-tasks N] [-max-cpu PCT] [-queue-timeout D] [-executor-timeout D] [-detach-timeout D] [-insecure] [-log FILE] [-pidfile FILE] [-replace] [-detach]
//
// With -master it runs nothing itself: it places each session on the
// executor with the most room and relays it there; executors are reshd
// -join MASTER processes, on this machine (-local N starts them) or others,
// admitted by their key in RESH_HOME/executors (cluster/spec.md).
//
// Sessions run over TLS 1.3: reshd presents its host key RESH_HOME/host_ed25519
// (created on first start) and admits the clients whose keys are listed in
// RESH_HOME/authorized_keys (created, if missing, with the key of the
// identity RESH_HOME/id_ed25519). RESH_HOME defaults to ~/.resh. -insecure
// serves plain TCP without keys, on a loopback address only.
//
// -detach runs it in the background once it listens, -log FILE keeps its
// log out of the terminal, -pidfile FILE records its process id and
// -replace stops the reshd that file names first: the Quick start of
// README.md runs them. The program is package resh/internal/reshdcmd.
package main

import (
	"os"

	"resh/internal/reshdcmd"
)

func main() { os.Exit(reshdcmd.Main(os.Args)) }
