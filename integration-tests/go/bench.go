package main

// --mode bench: throughput figures for `make bench` (benches/scripts/bench.py).
// It produces --count records of --size bytes (no key, one shared value,
// --compression, default none),
// waits for every acknowledgement, then reads the whole topic back by direct
// partition assignment, and prints one JSON line with records/s and MB/s
// (MB = 2^20 bytes, as Kafka's perf tools count) for each half.
//
// Unlike the other modes nothing is checked per record: the checker's maps
// and per-record values would cost more CPU than the client itself and so
// measure the test rather than the broker. Counting what was acknowledged and
// what was read back is the only check.

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

type benchSummary struct {
	Client               string  `json:"client"`
	Mode                 string  `json:"mode"`
	OK                   bool    `json:"ok"`
	Topic                string  `json:"topic"`
	Count                int     `json:"count"`
	Size                 int     `json:"size"`
	Acks                 string  `json:"acks"`
	Idempotent           bool    `json:"idempotent"`
	ProduceSeconds       float64 `json:"produce_seconds"`
	ProduceRecordsPerSec float64 `json:"produce_records_per_sec"`
	ProduceMBPerSec      float64 `json:"produce_mb_per_sec"`
	Consumed             int64   `json:"consumed"`
	ConsumeSeconds       float64 `json:"consume_seconds"`
	ConsumeRecordsPerSec float64 `json:"consume_records_per_sec"`
	ConsumeMBPerSec      float64 `json:"consume_mb_per_sec"`
	Error                string  `json:"error,omitempty"`
}

func benchProduce(o options) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	cc, err := codec(o.compression)
	if err != nil {
		return 0, err
	}
	opts := append(baseOpts(o), kgo.DefaultProduceTopic(o.topic), kgo.RecordDeliveryTimeout(o.timeout),
		kgo.ProducerBatchCompression(cc))
	switch o.acks {
	case "all":
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	case "1":
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()))
	case "0":
		opts = append(opts, kgo.RequiredAcks(kgo.NoAck()))
	}
	if !idempotentOn(o) {
		opts = append(opts, kgo.DisableIdempotentWrite())
	}
	if o.partitions > 0 {
		if err := createTopic(ctx, o); err != nil {
			return 0, err
		}
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	value := make([]byte, o.size)
	var failed atomic.Int64
	var firstErr atomic.Value
	start := time.Now()
	for i := 0; i < o.count; i++ {
		cl.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
			if err != nil && failed.Add(1) == 1 {
				firstErr.Store(err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return 0, fmt.Errorf("waiting for produce results: %w", err)
	}
	elapsed := time.Since(start)
	if n := failed.Load(); n > 0 {
		return 0, fmt.Errorf("%d of %d records failed, first: %v", n, o.count, firstErr.Load())
	}
	return elapsed, nil
}

// benchConsume reads every partition from the start to the end offsets
// listed before it starts, returning the time taken and records read.
func benchConsume(o options) (time.Duration, int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	admClient, err := kgo.NewClient(baseOpts(o)...)
	if err != nil {
		return 0, 0, err
	}
	defer admClient.Close()
	ends, err := endOffsets(ctx, kadm.NewClient(admClient), o.topic)
	if err != nil {
		return 0, 0, err
	}
	assign := map[int32]kgo.Offset{}
	for p, end := range ends {
		if end > 0 {
			assign[p] = kgo.NewOffset().AtStart()
		}
	}
	start := time.Now()
	cl, err := kgo.NewClient(append(baseOpts(o),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{o.topic: assign}))...)
	if err != nil {
		return 0, 0, err
	}
	defer cl.Close()
	var read int64
	for len(assign) > 0 {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return 0, read, fmt.Errorf("timed out after %v having read %d records (end offsets %v)", o.timeout, read, ends)
		}
		for _, fe := range fetches.Errors() {
			return 0, read, fmt.Errorf("fetch error on %s partition %d: %w", fe.Topic, fe.Partition, fe.Err)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			read++
			if r.Offset+1 >= ends[r.Partition] {
				delete(assign, r.Partition)
			}
		})
	}
	return time.Since(start), read, nil
}

func rates(count int64, size int, d time.Duration) (float64, float64) {
	s := d.Seconds()
	if s <= 0 {
		return 0, 0
	}
	return float64(count) / s, float64(count) * float64(size) / s / (1 << 20)
}

// runBench runs --mode bench and returns the exit status.
func runBench(o options) int {
	s := benchSummary{Client: "franz-go", Mode: "bench", Topic: o.topic, Count: o.count, Size: o.size,
		Acks: o.acks, Idempotent: idempotentOn(o)}
	err := func() error {
		pd, err := benchProduce(o)
		if err != nil {
			return err
		}
		s.ProduceSeconds = pd.Seconds()
		s.ProduceRecordsPerSec, s.ProduceMBPerSec = rates(int64(o.count), o.size, pd)
		cd, read, err := benchConsume(o)
		s.Consumed = read
		if err != nil {
			return err
		}
		s.ConsumeSeconds = cd.Seconds()
		s.ConsumeRecordsPerSec, s.ConsumeMBPerSec = rates(read, o.size, cd)
		return nil
	}()
	return emit(&s, err)
}

func (s *benchSummary) setOutcome(err error) { s.OK, s.Error = err == nil, errorText(err) }
