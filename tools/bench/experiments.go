package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// runExperiments repeats runs with one change made to the bench database only, to measure
// what the main runs suggest. (The first experiment, dropping the outbox's NOTIFY trigger,
// measured 1.23–1.43× and became migration 00003.)
//
//   - synchronous_commit=off: the api's enqueue and the worker's overhead without waiting for
//     WAL flushes, to size the share of fsync waits. It loses the last commits on a crash, so
//     it is no option for a system that promises a 202 is kept: it only measures.
func runExperiments(ctx context.Context, s *system, d durations, raw RawResult, res *Results) error {
	w := s.w
	out := s.cfg.Stdout
	api := func(name string) error {
		if err := w.reset(ctx); err != nil {
			return err
		}
		ar, err := runAPILoad(ctx, w, s.stackOf(""), 32, 0, d.apiWarm, d.apiWindow, s.components())
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		ar.Experiment = name
		if raw.OpsPerSec > 0 {
			ar.RatioRaw = ar.PerSec / raw.OpsPerSec
		}
		res.ExpAPI = append(res.ExpAPI, ar)
		fmt.Fprintln(out, ar.line())
		return w.reset(ctx)
	}
	restartAPI := func() error {
		if err := s.api.StopCleanly(30 * time.Second); err != nil {
			return err
		}
		return s.startAPI(ctx)
	}

	db := pgx.Identifier{w.name}.Sanitize()
	if _, err := w.pool.Exec(ctx, `ALTER DATABASE `+db+` SET synchronous_commit = off`); err != nil {
		return err
	}
	defer func() {
		_, _ = w.pool.Exec(context.WithoutCancel(ctx), `ALTER DATABASE `+db+` RESET synchronous_commit`)
	}()
	if err := restartAPI(); err != nil { // new connections take the setting
		return err
	}
	if err := api("synchronous_commit=off"); err != nil {
		return err
	}
	er, err := runE2E(ctx, s, E2ESpec{Name: "0s 1x1 sync-off", Workers: 1, Conc: 1, Warm: d.e2eWarm, Window: d.overheadWindow})
	if err != nil {
		return err
	}
	o := overheadOf(er)
	o.Experiment = "synchronous_commit=off"
	res.ExpOverhead = append(res.ExpOverhead, o)
	fmt.Fprintln(out, o.line())
	if _, err := w.pool.Exec(ctx, `ALTER DATABASE `+db+` RESET synchronous_commit`); err != nil {
		return err
	}
	return restartAPI()
}
