package sbom

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"

	scalibrlog "github.com/google/osv-scalibr/log"
)

// SetExtractorLogger routes osv-scalibr's messages, which it writes
// through a process-wide logger, to l at debug level: scalibr reports
// per-file conditions (a layer without os-release) that socle handles
// itself, and real extraction failures reach the layer's warnings.
// Call it once, from the command line's setup. Until it is called,
// analyzers keep scalibr silent, as a library should be.
func SetExtractorLogger(l *slog.Logger) {
	loggerSet.Store(true)
	scalibrlog.SetLogger(&scalibrLogger{l: l.With("component", "osv-scalibr")})
}

var loggerSet atomic.Bool

// silenceExtractors discards scalibr's messages unless a logger was set:
// its default writes to standard error, with the time, for every layer
// without an os-release file.
func silenceExtractors() {
	if loggerSet.CompareAndSwap(false, true) {
		scalibrlog.SetLogger(&scalibrLogger{l: slog.New(slog.DiscardHandler)})
	}
}

type scalibrLogger struct{ l *slog.Logger }

func (s *scalibrLogger) log(level slog.Level, args ...any) {
	if s.l.Enabled(context.Background(), level) {
		s.l.Log(context.Background(), level, fmt.Sprint(args...))
	}
}

func (s *scalibrLogger) logf(level slog.Level, format string, args ...any) {
	if s.l.Enabled(context.Background(), level) {
		s.l.Log(context.Background(), level, fmt.Sprintf(format, args...))
	}
}

func (s *scalibrLogger) Errorf(format string, args ...any) { s.logf(slog.LevelDebug, format, args...) }
func (s *scalibrLogger) Warnf(format string, args ...any)  { s.logf(slog.LevelDebug, format, args...) }
func (s *scalibrLogger) Infof(format string, args ...any)  { s.logf(slog.LevelDebug, format, args...) }
func (s *scalibrLogger) Debugf(format string, args ...any) { s.logf(slog.LevelDebug, format, args...) }
func (s *scalibrLogger) Error(args ...any)                 { s.log(slog.LevelDebug, args...) }
func (s *scalibrLogger) Warn(args ...any)                  { s.log(slog.LevelDebug, args...) }
func (s *scalibrLogger) Info(args ...any)                  { s.log(slog.LevelDebug, args...) }
func (s *scalibrLogger) Debug(args ...any)                 { s.log(slog.LevelDebug, args...) }
