package testenv

import "net"

// FreeAddr returns a loopback address (127.0.0.1:port) with a port no
// one listens on now, for a server the caller starts.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}
