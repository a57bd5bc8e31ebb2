package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/socle-dev/socle/internal/client"
	"github.com/socle-dev/socle/internal/store"
)

// waitJob follows a server job until it ends, printing each new message
// to stderr (the build's log lines among them), and returns it.
func waitJob(ctx context.Context, g *globals, c *client.Client, id int64) (store.Job, error) {
	last := ""
	for {
		var j store.Job
		if err := c.Do(ctx, "GET", fmt.Sprintf("/api/v1/jobs/%d", id), nil, &j); err != nil {
			return j, err
		}
		if j.Message != "" && j.Message != last {
			if j.Total > 0 {
				fmt.Fprintf(g.errOut, "[%d/%d] %s\n", j.Done, j.Total, j.Message)
			} else {
				fmt.Fprintln(g.errOut, j.Message)
			}
			last = j.Message
		}
		switch j.State {
		case store.JobDone:
			return j, nil
		case store.JobFailed:
			return j, &statusError{code: 1, msg: fmt.Sprintf("socle: job %d (%s) failed: %s", j.ID, j.Kind, j.Error)}
		}
		select {
		case <-ctx.Done():
			return j, ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// queued is the answer of an API route that queues a job.
type queued struct {
	Job  int64   `json:"job"`
	Jobs []int64 `json:"jobs"`
}
