package main

// Group consumption: --members franz-go clients in one consumer group
// (cooperative-sticky, the franz-go default balancer family), each
// committing after processing what it polled. Rebalances are held back
// while a poll is processed (BlockRebalanceOnPoll), so a clean run reads
// every record exactly once. Checks: every record read, the final
// assignments cover each partition exactly once, and the group's committed
// offsets equal the end offsets.

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// member tracks the partitions one group member owns.
type member struct {
	mu    sync.Mutex
	owned map[int32]bool
}

func (m *member) update(assigned map[string][]int32, add bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, partitions := range assigned {
		for _, p := range partitions {
			if add {
				m.owned[p] = true
			} else {
				delete(m.owned, p)
			}
		}
	}
}

func endOffsets(ctx context.Context, adm *kadm.Client, topic string) (map[int32]int64, error) {
	if _, err := waitForTopic(ctx, adm, topic, 0); err != nil {
		return nil, err
	}
	listed, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = listed.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("listing end offsets: %w", err)
	}
	ends := map[int32]int64{}
	listed.Each(func(lo kadm.ListedOffset) { ends[lo.Partition] = lo.Offset })
	return ends, nil
}

// exclusiveCover reports whether the members own every partition exactly once.
func exclusiveCover(members []*member, partitions int) bool {
	count := map[int32]int{}
	for _, m := range members {
		m.mu.Lock()
		for p := range m.owned {
			count[p]++
		}
		m.mu.Unlock()
	}
	if len(count) != partitions {
		return false
	}
	for _, n := range count {
		if n != 1 {
			return false
		}
	}
	return true
}

func runMember(ctx context.Context, cl *kgo.Client, c *checker, failed chan<- error) {
	// A poll holds rebalances back until AllowRebalance; Close would wait forever.
	defer cl.AllowRebalance()
	for ctx.Err() == nil {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return
		}
		for _, fe := range fetches.Errors() {
			failed <- fmt.Errorf("fetch error on %s partition %d: %w", fe.Topic, fe.Partition, fe.Err)
			return
		}
		c.mu.Lock()
		fetches.EachRecord(c.consumed)
		c.mu.Unlock()
		if err := cl.CommitUncommittedOffsets(ctx); err != nil && ctx.Err() == nil {
			failed <- fmt.Errorf("commit: %w", err)
			return
		}
		cl.AllowRebalance()
	}
}

// groupProtocolOpts picks the group protocol: the client-side
// cooperative-sticky balancer (classic), or KIP-848, where franz-go asks the
// broker to assign and names the balancer's server-side twin (range).
func groupProtocolOpts(o options) []kgo.Opt {
	if o.protocol != "consumer" {
		return nil
	}
	return []kgo.Opt{kgo.Balancers(kgo.RangeBalancer()), kgo.ServerSideBalancer()}
}

func groupConsume(o options, c *checker) error {
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
	total := 0
	for _, end := range ends {
		total += int(end)
	}
	members := make([]*member, o.members)
	clients := make([]*kgo.Client, o.members)
	for i := range clients {
		m := &member{owned: map[int32]bool{}}
		members[i] = m
		clients[i], err = kgo.NewClient(append(append(baseOpts(o), groupProtocolOpts(o)...),
			kgo.ConsumerGroup(o.group),
			kgo.ConsumeTopics(o.topic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.DisableAutoCommit(),
			kgo.BlockRebalanceOnPoll(),
			kgo.FetchMaxWait(500*time.Millisecond),
			kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, a map[string][]int32) { m.update(a, true) }),
			kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, r map[string][]int32) { m.update(r, false) }),
			kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, l map[string][]int32) { m.update(l, false) }),
		)...)
		if err != nil {
			return err
		}
	}
	runCtx, stop := context.WithCancel(ctx)
	failed := make(chan error, o.members)
	var wg sync.WaitGroup
	for _, cl := range clients {
		wg.Add(1)
		go func(cl *kgo.Client) {
			defer wg.Done()
			runMember(runCtx, cl, c, failed)
		}(cl)
	}
	settled := func() bool {
		c.mu.Lock()
		read := c.read
		c.mu.Unlock()
		return read >= total && exclusiveCover(members, len(ends))
	}
	var waitErr error
	for !settled() && waitErr == nil {
		select {
		case waitErr = <-failed:
		case <-ctx.Done():
			waitErr = fmt.Errorf("timed out: read %d of %d records; assignments settled: %v", c.read, total, exclusiveCover(members, len(ends)))
		case <-time.After(100 * time.Millisecond):
		}
	}
	stop()
	wg.Wait()
	for _, cl := range clients {
		cl.Close() // leaves the group
	}
	if waitErr != nil {
		return waitErr
	}
	return checkCommitted(ctx, adm, o, ends)
}

func checkCommitted(ctx context.Context, adm *kadm.Client, o options, ends map[int32]int64) error {
	committed, err := adm.FetchOffsets(ctx, o.group)
	if err == nil {
		err = committed.Error()
	}
	if err != nil {
		return fmt.Errorf("fetching committed offsets: %w", err)
	}
	var wrong []string
	for p, end := range ends {
		got, ok := committed.Lookup(o.topic, p)
		if !ok || got.At != end {
			wrong = append(wrong, fmt.Sprintf("partition %d: committed %d, end %d", p, got.At, end))
		}
	}
	sort.Strings(wrong)
	if len(wrong) > 0 {
		return fmt.Errorf("committed offsets differ from end offsets: %v", wrong)
	}
	return nil
}
