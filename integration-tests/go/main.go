// franz-client: a produce-then-consume round trip with franz-go, the test
// client for Skein's integration tests.
//
//	franz-client -bootstrap HOST:PORT -topic T [-count N] [-size BYTES]
//	    [-compression none|gzip|snappy|lz4|zstd] [-partitions P]
//
// Creates the topic, produces N keyed records with the default idempotent
// producer (acks=all), then consumes every partition from the start (direct
// partition consumption, no group) and checks that each record arrived once,
// intact, in production order per partition. Prints a JSON summary.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func valueFor(index, size int) []byte {
	head := []byte(strconv.Itoa(index) + ":")
	value := make([]byte, 0, size)
	value = append(value, head...)
	for j := 0; len(value) < size; j++ {
		value = append(value, byte((index+j)%251))
	}
	return value
}

func codec(name string) (kgo.CompressionCodec, error) {
	switch name {
	case "none":
		return kgo.NoCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.NoCompression(), fmt.Errorf("unknown codec %q", name)
}

func run() error {
	bootstrap := flag.String("bootstrap", "", "broker address")
	topic := flag.String("topic", "", "topic")
	count := flag.Int("count", 1000, "records")
	size := flag.Int("size", 100, "value bytes")
	compression := flag.String("compression", "none", "codec")
	partitions := flag.Int("partitions", 1, "partitions")
	timeout := flag.Duration("timeout", 2*time.Minute, "overall timeout")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	started := time.Now()

	c, err := codec(*compression)
	if err != nil {
		return err
	}
	producer, err := kgo.NewClient(kgo.SeedBrokers(*bootstrap), kgo.ProducerBatchCompression(c),
		kgo.ProducerBatchMaxBytes(int32(max(1_000_000, *size*2))))
	if err != nil {
		return err
	}
	defer producer.Close()
	created, err := kadm.NewClient(producer).CreateTopic(ctx, int32(*partitions), 1, nil, *topic)
	if err != nil || created.Err != nil {
		return fmt.Errorf("create topic: %v %v", err, created.Err)
	}
	records := make([]*kgo.Record, *count)
	for i := range records {
		records[i] = &kgo.Record{Topic: *topic, Key: []byte("k" + strconv.Itoa(i)), Value: valueFor(i, *size)}
	}
	if err := producer.ProduceSync(ctx, records...).FirstErr(); err != nil {
		return fmt.Errorf("produce: %w", err)
	}
	producedAt := time.Now()

	offsets := map[string]map[int32]kgo.Offset{*topic: {}}
	for p := 0; p < *partitions; p++ {
		offsets[*topic][int32(p)] = kgo.NewOffset().AtStart()
	}
	consumer, err := kgo.NewClient(kgo.SeedBrokers(*bootstrap), kgo.ConsumePartitions(offsets),
		kgo.FetchMaxPartitionBytes(int32(max(1_048_576, *size*2))))
	if err != nil {
		return err
	}
	defer consumer.Close()
	seen := map[int]bool{}
	lastOffset := map[int32]int64{}
	lastIndex := map[int32]int{}
	for len(seen) < *count {
		fetches := consumer.PollFetches(ctx)
		if ctx.Err() != nil {
			return fmt.Errorf("timed out with %d of %d records", len(seen), *count)
		}
		for _, fetchErr := range fetches.Errors() {
			return fmt.Errorf("fetch %s[%d]: %w", fetchErr.Topic, fetchErr.Partition, fetchErr.Err)
		}
		var checkErr error
		fetches.EachRecord(func(r *kgo.Record) {
			index, _ := strconv.Atoi(string(r.Key[1:]))
			switch {
			case seen[index]:
				checkErr = fmt.Errorf("record %d delivered twice", index)
			case !bytes.Equal(r.Value, valueFor(index, *size)):
				checkErr = fmt.Errorf("record %d corrupt", index)
			}
			if last, ok := lastOffset[r.Partition]; ok && (r.Offset <= last || index <= lastIndex[r.Partition]) {
				checkErr = fmt.Errorf("partition %d out of order at offset %d", r.Partition, r.Offset)
			}
			seen[index], lastOffset[r.Partition], lastIndex[r.Partition] = true, r.Offset, index
		})
		if checkErr != nil {
			return checkErr
		}
	}
	if len(seen) != *count {
		return errors.New("record count mismatch")
	}
	summary, _ := json.Marshal(map[string]any{
		"client": "franz-go", "produced": *count, "consumed": len(seen),
		"produce_seconds": producedAt.Sub(started).Seconds(), "total_seconds": time.Since(started).Seconds(),
	})
	fmt.Println(string(summary))
	return nil
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "franz-client failed:", err)
		os.Exit(1)
	}
}
