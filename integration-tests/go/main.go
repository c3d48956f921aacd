// franz-client: a produce-then-consume round trip with franz-go, one of the
// real Kafka clients Skein's integration tests drive. scripts/install-test-tools.sh
// builds it into $SKEIN_TOOLS_DIR/bin/franz-client.
//
//	franz-client --bootstrap HOST:PORT --topic T [--count N] [--size BYTES]
//	    [--compression none|gzip|snappy|lz4|zstd] [--acks all|1|0]
//	    [--idempotent auto|on|off] [--create-partitions P] [--timeout SECONDS]
//	    [--mode both|produce|consume|bench|producers] [--producers N]
//
// (Go flags: one dash works too; --partitions is another name for
// --create-partitions.)
//
// It produces COUNT records with keys "k<i>" and values "<i>:" padded to SIZE
// bytes with filler that depends on i (the same records as the Python clients
// in integration-tests/python), waits for every produce result, then reads
// every partition of the topic from the start by direct partition assignment
// (kgo.ConsumePartitions: no group, no commits) up to the end offsets listed
// after producing, and checks that each record arrived exactly once, intact,
// at the partition and offset its produce result gave, and in production
// order within its partition. The producer is franz-go's default idempotent
// one with --acks all (idempotence needs acks=all, so it is off otherwise).
//
// --mode bench measures instead of checking: see bench.go; --mode producers
// is the many-producers scale benchmark: see producers.go.
//
// Only the one-line JSON summary goes to stdout; messages go to stderr. Exit
// status 0 means every check passed, 1 that something failed, 2 bad flags.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

type options struct {
	bootstrap   string
	topic       string
	count       int
	size        int
	compression string
	acks        string
	idempotent  string
	partitions  int
	timeout     time.Duration
	mode        string
	group       string
	protocol    string
	members     int
	producers   int
}

type summary struct {
	Client         string   `json:"client"`
	OK             bool     `json:"ok"`
	Topic          string   `json:"topic"`
	Count          int      `json:"count"`
	Size           int      `json:"size"`
	Compression    string   `json:"compression"`
	Acks           string   `json:"acks"`
	Idempotent     bool     `json:"idempotent"`
	Mode           string   `json:"mode"`
	Produced       int      `json:"produced"`
	Consumed       int      `json:"consumed"`
	Partitions     []int32  `json:"partitions,omitempty"`
	ProduceSeconds *float64 `json:"produce_seconds,omitempty"`
	ConsumeSeconds *float64 `json:"consume_seconds,omitempty"`
	ElapsedSeconds float64  `json:"elapsed_seconds"`
	Error          string   `json:"error,omitempty"`
}

func keyFor(i int) []byte { return []byte("k" + strconv.Itoa(i)) }

// valueFor is "<i>:" then lowercase filler that depends on i, up to size bytes.
func valueFor(i, size int) []byte {
	v := []byte(strconv.Itoa(i) + ":")
	for j := len(v); j < size; j++ {
		v = append(v, byte('a'+(i+j)%26))
	}
	return v
}

func indexOfKey(key []byte) (int, error) {
	if len(key) < 2 || key[0] != 'k' {
		return 0, fmt.Errorf("unexpected key %q", key)
	}
	i, err := strconv.Atoi(string(key[1:]))
	if err != nil || i < 0 {
		return 0, fmt.Errorf("unexpected key %q", key)
	}
	return i, nil
}

type place struct {
	partition int32
	offset    int64
}

// checker collects produce results and consumed records and checks them.
type checker struct {
	count, size int

	mu             sync.Mutex
	delivered      map[int]place // offset -1 when unknown (acks=0)
	deliveryErrors []string
	read           int
	seen           map[int]place
	last           map[int32][2]int64 // partition -> {offset, index} of the last record read
	problems       []string
}

func newChecker(count, size int) *checker {
	return &checker{count: count, size: size, delivered: map[int]place{}, seen: map[int]place{}, last: map[int32][2]int64{}}
}

func (c *checker) delivery(i int, p place, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case err != nil:
		c.deliveryErrors = append(c.deliveryErrors, fmt.Sprintf("record %d: %v", i, err))
	case c.hasDelivered(i):
		c.problems = append(c.problems, fmt.Sprintf("second produce result for record %d", i))
	default:
		c.delivered[i] = p
	}
}

func (c *checker) hasDelivered(i int) bool { _, ok := c.delivered[i]; return ok }

func (c *checker) checkDelivered() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := len(c.deliveryErrors); n > 0 {
		first := c.deliveryErrors
		if len(first) > 5 {
			first = first[:5]
		}
		return fmt.Errorf("%d of %d records failed to produce: %s", n, c.count, strings.Join(first, "; "))
	}
	if len(c.delivered) != c.count {
		return fmt.Errorf("only %d of %d records had a produce result", len(c.delivered), c.count)
	}
	return nil
}

func (c *checker) problem(format string, args ...any) {
	c.problems = append(c.problems, fmt.Sprintf(format, args...))
}

func (c *checker) consumed(r *kgo.Record) {
	c.read++
	if len(c.problems) >= 20 { // enough to go on; stop collecting
		return
	}
	i, err := indexOfKey(r.Key)
	if err != nil {
		c.problem("partition %d offset %d: %v", r.Partition, r.Offset, err)
		return
	}
	if i >= c.count {
		c.problem("partition %d offset %d: key %q out of range", r.Partition, r.Offset, r.Key)
		return
	}
	here := place{r.Partition, r.Offset}
	if before, dup := c.seen[i]; dup {
		c.problem("record %d read twice: at %v and at %v", i, before, here)
		return
	}
	c.seen[i] = here
	if want := valueFor(i, c.size); string(r.Value) != string(want) {
		shown := r.Value
		if len(shown) > 40 {
			shown = shown[:40]
		}
		c.problem("record %d at partition %d offset %d: wrong value (%d bytes, starts %q)", i, r.Partition, r.Offset, len(r.Value), shown)
	}
	if d, ok := c.delivered[i]; ok && d.offset >= 0 && d != here {
		c.problem("record %d read at partition %d offset %d, but its produce result said partition %d offset %d",
			i, r.Partition, r.Offset, d.partition, d.offset)
	}
	if prev, ok := c.last[r.Partition]; ok {
		if r.Offset <= prev[0] {
			c.problem("partition %d: offset %d came after offset %d", r.Partition, r.Offset, prev[0])
		}
		if int64(i) <= prev[1] {
			c.problem("partition %d: record %d (offset %d) came after record %d (offset %d), out of production order",
				r.Partition, i, r.Offset, prev[1], prev[0])
		}
	}
	c.last[r.Partition] = [2]int64{r.Offset, int64(i)}
}

func (c *checker) checkConsumed() error {
	if n := len(c.problems); n > 0 {
		many := ""
		if n >= 20 {
			many = "at least "
		}
		shown := c.problems
		if len(shown) > 10 {
			shown = shown[:10]
		}
		return fmt.Errorf("%s%d problem(s) in what was read: %s", many, n, strings.Join(shown, "; "))
	}
	var missing []int
	for i := 0; i < c.count; i++ {
		if _, ok := c.seen[i]; !ok {
			missing = append(missing, i)
		}
	}
	if len(missing) > 0 {
		first := missing
		if len(first) > 10 {
			first = first[:10]
		}
		return fmt.Errorf("%d of %d records never read, first: %v", len(missing), c.count, first)
	}
	return nil
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
	return kgo.CompressionCodec{}, fmt.Errorf("unknown --compression %q (none|gzip|snappy|lz4|zstd)", name)
}

func idempotentOn(o options) bool {
	return o.idempotent == "on" || (o.idempotent == "auto" && o.acks == "all")
}

// stderrLogger passes franz-go's warnings and errors to stderr.
type stderrLogger struct{}

func (stderrLogger) Level() kgo.LogLevel { return kgo.LogLevelWarn }
func (stderrLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	fmt.Fprintf(os.Stderr, "franz-go %s: %s %v\n", level, msg, keyvals)
}

func baseOpts(o options) []kgo.Opt {
	return []kgo.Opt{
		kgo.SeedBrokers(strings.Split(o.bootstrap, ",")...),
		kgo.WithLogger(stderrLogger{}),
		kgo.RequestTimeoutOverhead(5 * time.Second),
		// Look a new (e.g. just auto-created) topic up again soon, not after the default 5s.
		kgo.MetadataMinAge(250 * time.Millisecond),
	}
}

// waitForTopic waits until metadata shows the topic with a leader for every
// partition (and want partitions, if want > 0) and returns its partitions.
func waitForTopic(ctx context.Context, adm *kadm.Client, topic string, want int) ([]int32, error) {
	problem := "no metadata"
	for {
		md, err := adm.Metadata(ctx, topic)
		if err != nil {
			problem = err.Error()
		} else if t, ok := md.Topics[topic]; !ok {
			problem = "topic missing from metadata"
		} else if t.Err != nil {
			problem = "topic error: " + t.Err.Error()
		} else if want > 0 && len(t.Partitions) != want {
			problem = fmt.Sprintf("%d partitions, want %d", len(t.Partitions), want)
		} else if len(t.Partitions) == 0 {
			problem = "no partitions"
		} else {
			var ps []int32
			leaderless := false
			for p, d := range t.Partitions {
				ps = append(ps, p)
				leaderless = leaderless || d.Leader < 0 || d.Err != nil
			}
			if !leaderless {
				sort.Slice(ps, func(a, b int) bool { return ps[a] < ps[b] })
				return ps, nil
			}
			problem = "a partition has no leader"
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("metadata for topic %q not ready: %s", topic, problem)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// createTopic creates the topic with its own client, so that the producer's
// client first looks the topic up once it exists.
func createTopic(ctx context.Context, o options) error {
	cl, err := kgo.NewClient(baseOpts(o)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	resp, err := adm.CreateTopic(ctx, int32(o.partitions), 1, nil, o.topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		return fmt.Errorf("creating topic %q with %d partitions: %w", o.topic, o.partitions, err)
	}
	_, err = waitForTopic(ctx, adm, o.topic, o.partitions)
	return err
}

func produce(o options, c *checker) error {
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	cc, err := codec(o.compression)
	if err != nil {
		return err
	}
	opts := append(baseOpts(o),
		kgo.DefaultProduceTopic(o.topic),
		kgo.AllowAutoTopicCreation(),
		kgo.ProducerBatchCompression(cc),
		kgo.RecordDeliveryTimeout(o.timeout),
	)
	if o.size > 900_000 { // room for one large record per batch
		opts = append(opts, kgo.ProducerBatchMaxBytes(int32(o.size+64*1024)))
	}
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
			return err
		}
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	defer cl.Close()

	for i := 0; i < o.count; i++ {
		i := i
		cl.Produce(ctx, &kgo.Record{Key: keyFor(i), Value: valueFor(i, o.size)}, func(r *kgo.Record, err error) {
			offset := r.Offset
			if o.acks == "0" {
				offset = -1 // not known without acknowledgements
			}
			c.delivery(i, place{r.Partition, offset}, err)
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return fmt.Errorf("waiting for produce results: %w", err)
	}
	return c.checkDelivered()
}

func consume(o options, c *checker) error {
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	admClient, err := kgo.NewClient(baseOpts(o)...)
	if err != nil {
		return err
	}
	defer admClient.Close()
	adm := kadm.NewClient(admClient)
	ends, err := endOffsets(ctx, adm, o.topic)
	if err != nil {
		return err
	}
	assign := map[int32]kgo.Offset{}
	for p, end := range ends {
		if end > 0 {
			assign[p] = kgo.NewOffset().AtStart()
		}
	}
	if len(assign) == 0 {
		return nil
	}
	cl, err := kgo.NewClient(append(baseOpts(o),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{o.topic: assign}),
		kgo.FetchMaxWait(500*time.Millisecond),
	)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	pending := map[int32]bool{}
	for p := range assign {
		pending[p] = true
	}
	for len(pending) > 0 {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			var left []int32
			for p := range pending {
				left = append(left, p)
			}
			sort.Slice(left, func(a, b int) bool { return left[a] < left[b] })
			return fmt.Errorf("timed out after %v reading partitions %v (read %d records; end offsets %v)", o.timeout, left, c.read, ends)
		}
		for _, fe := range fetches.Errors() {
			return fmt.Errorf("fetch error on %s partition %d: %w", fe.Topic, fe.Partition, fe.Err)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			c.consumed(r)
			if r.Offset+1 >= ends[r.Partition] {
				delete(pending, r.Partition)
			}
		})
	}
	return nil
}

func seconds(d time.Duration) *float64 {
	s := float64(d.Milliseconds()) / 1000
	return &s
}

func main() {
	var o options
	var timeoutSeconds float64
	flag.StringVar(&o.bootstrap, "bootstrap", "", "HOST:PORT[,HOST:PORT...] (required)")
	flag.StringVar(&o.topic, "topic", "", "topic (required)")
	flag.IntVar(&o.count, "count", 1000, "records to produce")
	flag.IntVar(&o.size, "size", 100, "value size in bytes (values are never shorter than \"<i>:\")")
	flag.StringVar(&o.compression, "compression", "none", "none|gzip|snappy|lz4|zstd")
	flag.StringVar(&o.acks, "acks", "all", "all|1|0")
	flag.StringVar(&o.idempotent, "idempotent", "auto", "auto|on|off (auto: on with --acks all)")
	flag.IntVar(&o.partitions, "create-partitions", 0, "create the topic with this many partitions (replication factor 1) first; 0: rely on the caller or on auto-creation")
	flag.IntVar(&o.partitions, "partitions", 0, "same as --create-partitions")
	flag.Float64Var(&timeoutSeconds, "timeout", 60, "seconds allowed for producing, and again for consuming")
	flag.StringVar(&o.mode, "mode", "both", "both|produce|consume|bench (consume only: checks keys k0..k<count-1> without produce offsets; bench: throughput, see bench.go)")
	flag.StringVar(&o.group, "group", "", "consume as this consumer group (commits after each poll; balancer per --group-protocol) instead of by direct assignment")
	flag.StringVar(&o.protocol, "group-protocol", "classic", "classic|consumer (classic: client-side cooperative-sticky; consumer: KIP-848, the broker assigns with its range assignor)")
	flag.IntVar(&o.members, "members", 1, "group members consuming concurrently (with --group)")
	flag.IntVar(&o.producers, "producers", 1000, "concurrent producer clients (with --mode producers)")
	flag.Parse()
	o.timeout = time.Duration(timeoutSeconds * float64(time.Second))

	bad := func(msg string) {
		fmt.Fprintln(os.Stderr, "franz-client: "+msg)
		flag.Usage()
		os.Exit(2)
	}
	switch {
	case flag.NArg() > 0:
		bad("unexpected arguments: " + strings.Join(flag.Args(), " "))
	case o.bootstrap == "" || o.topic == "":
		bad("--bootstrap and --topic are required")
	case o.count < 0 || o.size < 0 || o.partitions < 0 || o.timeout <= 0:
		bad("--count, --size and --create-partitions must not be negative, --timeout must be positive")
	case o.acks != "all" && o.acks != "1" && o.acks != "0":
		bad("--acks must be all, 1 or 0")
	case o.idempotent != "auto" && o.idempotent != "on" && o.idempotent != "off":
		bad("--idempotent must be auto, on or off")
	case o.idempotent == "on" && o.acks != "all":
		bad("--idempotent on needs --acks all")
	case o.members < 1:
		bad("--members must be at least 1")
	case o.mode != "both" && o.mode != "produce" && o.mode != "consume" && o.mode != "bench" && o.mode != "producers":
		bad("--mode must be both, produce, consume, bench or producers")
	case o.protocol != "classic" && o.protocol != "consumer":
		bad("--group-protocol must be classic or consumer")
	case o.mode == "producers" && (o.producers < 1 || o.count < o.producers):
		bad("--mode producers needs 1 <= --producers <= --count")
	}
	if _, err := codec(o.compression); err != nil {
		bad(err.Error())
	}
	if o.mode == "bench" {
		os.Exit(runBench(o))
	}
	if o.mode == "producers" {
		os.Exit(runProducers(o))
	}

	s := summary{
		Client: "franz-go", Topic: o.topic, Count: o.count, Size: o.size, Compression: o.compression,
		Acks: o.acks, Idempotent: idempotentOn(o), Mode: o.mode,
	}
	c := newChecker(o.count, o.size)
	start := time.Now()
	err := func() error {
		if o.mode != "consume" {
			t := time.Now()
			if err := produce(o, c); err != nil {
				return err
			}
			s.Produced = len(c.delivered)
			s.ProduceSeconds = seconds(time.Since(t))
		}
		if o.mode != "produce" {
			t := time.Now()
			consumeWith := consume
			if o.group != "" {
				consumeWith = groupConsume
			}
			err := consumeWith(o, c)
			s.Consumed = c.read
			for p := range c.last {
				s.Partitions = append(s.Partitions, p)
			}
			sort.Slice(s.Partitions, func(a, b int) bool { return s.Partitions[a] < s.Partitions[b] })
			if err != nil {
				return err
			}
			if err := c.checkConsumed(); err != nil {
				return err
			}
			s.ConsumeSeconds = seconds(time.Since(t))
		}
		return nil
	}()
	s.ElapsedSeconds = *seconds(time.Since(start))
	os.Exit(emit(&s, err))
}

// outcome is what every mode's one-line summary records of how it ended.
type outcome interface{ setOutcome(err error) }

func (s *summary) setOutcome(err error) { s.OK, s.Error = err == nil, errorText(err) }

func errorText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// emit records err in the summary, prints it as one JSON line on stdout
// (and the failure on stderr) and returns the exit status.
func emit(s outcome, err error) int {
	s.setOutcome(err)
	code := 0
	if err != nil {
		fmt.Fprintln(os.Stderr, "franz-client: FAILED: "+err.Error())
		code = 1
	}
	out, jerr := json.Marshal(s)
	if jerr != nil {
		out = []byte(`{"client":"franz-go","ok":false,"error":"encoding the summary failed"}`)
		code = 1
	}
	fmt.Println(string(out))
	return code
}
