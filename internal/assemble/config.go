package assemble

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/socle-dev/socle/internal/layer"
)

// addUsers writes /etc/passwd and /etc/group: base-passwd's masters
// when it is installed (its postinst would copy them), root otherwise,
// and the nonroot user.
func addUsers(t *layer.Tree) error {
	passwd, ok := t.Read("usr/share/base-passwd/passwd.master")
	if !ok {
		passwd = []byte("root:x:0:0:root:/root:/bin/sh\n")
	}
	group, ok := t.Read("usr/share/base-passwd/group.master")
	if !ok {
		group = []byte("root:x:0:\n")
	}
	passwd = append(append([]byte(nil), passwd...), []byte(fmt.Sprintf("%s:x:%d:%d:nonroot:/home/%s:/sbin/nologin\n", nonRootName, nonRootID, nonRootID, nonRootName))...)
	group = append(append([]byte(nil), group...), []byte(fmt.Sprintf("%s:x:%d:\n", nonRootName, nonRootID))...)
	if err := t.AddFile("etc/passwd", 0o644, 0, 0, passwd, ""); err != nil {
		return err
	}
	if err := t.AddFile("etc/group", 0o644, 0, 0, group, ""); err != nil {
		return err
	}
	return t.AddDir("home/"+nonRootName, 0o700, nonRootID, nonRootID)
}

// addCABundle does what ca-certificates' update-ca-certificates would:
// concatenate the trusted certificates into one bundle.
func addCABundle(t *layer.Tree) error {
	var certs []string
	for _, p := range t.OwnedBy("ca-certificates") {
		if strings.HasPrefix(p, "usr/share/ca-certificates/") && strings.HasSuffix(p, ".crt") {
			certs = append(certs, p)
		}
	}
	if len(certs) == 0 {
		return nil
	}
	var bundle bytes.Buffer
	for _, c := range certs {
		b, _ := t.Read(c)
		bundle.Write(bytes.TrimSpace(b))
		bundle.WriteByte('\n')
	}
	return t.AddFile("etc/ssl/certs/ca-certificates.crt", 0o644, 0, 0, bundle.Bytes(), "")
}
