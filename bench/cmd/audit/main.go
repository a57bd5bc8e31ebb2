// Command audit fills a store's audit log for bench/audit.sh: -events
// events (hand-made, shaped like promotion events), with a checkpoint
// signed every -every events into -checkpoints by a key generated here,
// whose public half is written to -key.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"strings"
	"time"

	"github.com/socle-dev/socle/internal/audit"
	"github.com/socle-dev/socle/internal/sign"
	"github.com/socle-dev/socle/internal/store"
	"github.com/socle-dev/socle/internal/store/postgres"
	"github.com/socle-dev/socle/internal/store/sqlite"
)

func main() {
	database := flag.String("database", "", "SQLite file or postgres:// URL")
	events := flag.Int("events", 1_000_000, "events to append")
	every := flag.Int("every", 100_000, "events between checkpoints")
	dir := flag.String("checkpoints", "", "checkpoint directory")
	pub := flag.String("key", "", "where the checkpoint key's public half is written")
	flag.Parse()
	ctx := context.Background()
	st, err := open(ctx, *database)
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	cp, err := checkpointer(st, *dir, *pub)
	if err != nil {
		log.Fatal(err)
	}
	start := time.Now()
	for i := 1; i <= *events; i++ {
		ev := store.AuditEvent{Actor: "alice", Action: "promotion.done", Subject: fmt.Sprintf("shop/app%d", i%500),
			Details: []byte(fmt.Sprintf(`{"digest":"sha256:%064x","env":"prod","gates":["signature","vulnerabilities","soak"]}`, i))}
		if _, err := st.AppendAudit(ctx, ev); err != nil {
			log.Fatal(err)
		}
		if i%*every == 0 {
			if _, err := cp.Checkpoint(ctx, "bench"); err != nil {
				log.Fatal(err)
			}
		}
	}
	fmt.Printf("appended %d events in %.1fs\n", *events, time.Since(start).Seconds())
}

func open(ctx context.Context, db string) (store.Store, error) {
	if strings.HasPrefix(db, "postgres://") {
		return postgres.Open(ctx, db)
	}
	return sqlite.Open(ctx, db)
}

func checkpointer(st store.Store, dir, pub string) (*audit.Checkpointer, error) {
	kp, err := sign.GenerateKeyPair(nil)
	if err != nil {
		return nil, err
	}
	signer, err := sign.LoadSigner(kp.Private, nil)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(pub, kp.Public, 0o600); err != nil {
		return nil, err
	}
	return &audit.Checkpointer{Log: st, Signer: signer, Sink: audit.DirSink{Dir: dir}}, nil
}
