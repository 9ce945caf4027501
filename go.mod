module resh

go 1.26.8

require (
	go.uber.org/goleak v1.3.0
	golang.org/x/net v0.62.0
)

require (
	github.com/creack/pty v1.1.24
	github.com/hashicorp/yamux v0.1.2
	golang.org/x/sys v0.49.0
	golang.org/x/term v0.47.0
)

require golang.org/x/crypto v0.58.0

require (
	github.com/kevinburke/ssh_config v1.6.0 // indirect
	github.com/stretchr/testify v1.11.1 // indirect
)
