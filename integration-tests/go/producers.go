package main

// --mode producers: the many-producers scale benchmark
// (benches/scripts/scale.py). --producers clients, each its own connection
// and idempotent producer, send --count records of --size bytes between
// them, all at once; one JSON line reports records/s and the latency from
// Produce to acknowledgement (p50, p99, max). Nothing is checked per record
// beyond its acknowledgement.

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

type producersSummary struct {
	Client        string  `json:"client"`
	Mode          string  `json:"mode"`
	OK            bool    `json:"ok"`
	Producers     int     `json:"producers"`
	Count         int     `json:"count"`
	Size          int     `json:"size"`
	Seconds       float64 `json:"seconds"`
	RecordsPerSec float64 `json:"records_per_sec"`
	P50Ms         float64 `json:"p50_ms"`
	P99Ms         float64 `json:"p99_ms"`
	MaxMs         float64 `json:"max_ms"`
	Error         string  `json:"error,omitempty"`
}

// produceFromOne sends n records from one new client and returns each
// record's time to acknowledgement.
func produceFromOne(ctx context.Context, o options, n int, value []byte) ([]time.Duration, error) {
	cl, err := kgo.NewClient(append(baseOpts(o), kgo.DefaultProduceTopic(o.topic), kgo.RecordDeliveryTimeout(o.timeout))...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	latencies := make([]time.Duration, n)
	var mu sync.Mutex
	var firstErr error
	for i := 0; i < n; i++ {
		i, sent := i, time.Now()
		cl.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
			latencies[i] = time.Since(sent)
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return nil, err
	}
	return latencies, firstErr
}

func percentileMs(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p * float64(len(sorted)-1))
	return float64(sorted[i].Microseconds()) / 1000
}

// runProducers runs --mode producers and returns the exit status.
func runProducers(o options) int {
	s := producersSummary{Client: "franz-go", Mode: "producers", Producers: o.producers, Count: o.count, Size: o.size}
	err := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
		defer cancel()
		if o.partitions > 0 {
			if err := createTopic(ctx, o); err != nil {
				return err
			}
		}
		value := make([]byte, o.size)
		per := o.count / o.producers
		results := make([][]time.Duration, o.producers)
		errs := make([]error, o.producers)
		var wg sync.WaitGroup
		start := time.Now()
		for p := 0; p < o.producers; p++ {
			wg.Add(1)
			go func(p int) {
				defer wg.Done()
				results[p], errs[p] = produceFromOne(ctx, o, per, value)
			}(p)
		}
		wg.Wait()
		elapsed := time.Since(start)
		var all []time.Duration
		for p, err := range errs {
			if err != nil {
				return fmt.Errorf("producer %d: %w", p, err)
			}
			all = append(all, results[p]...)
		}
		sort.Slice(all, func(a, b int) bool { return all[a] < all[b] })
		s.Count = len(all)
		s.Seconds = elapsed.Seconds()
		s.RecordsPerSec = float64(len(all)) / elapsed.Seconds()
		s.P50Ms, s.P99Ms, s.MaxMs = percentileMs(all, 0.50), percentileMs(all, 0.99), percentileMs(all, 1)
		return nil
	}()
	return emit(&s, err)
}

func (s *producersSummary) setOutcome(err error) { s.OK, s.Error = err == nil, errorText(err) }
