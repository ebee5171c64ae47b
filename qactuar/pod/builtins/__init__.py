"""Ready-made beans: a server scaffold (`simple`), a TCP server (`tcp_server`),
producer-consumer (`pcflow`), a Python REPL on a Unix socket (`repl`) and
Qactuar's HTTP server (`http`)."""
