package console

import "time"

// RecordHistory lets a test fill the dashboard's hour: n samples every
// apart, ending now, with step changing the metrics before each one.
func RecordHistory(c *Console, n int, every time.Duration, step func(i int)) {
	start := time.Now().Add(-time.Duration(n) * every)
	for i := range n {
		step(i)
		x := c.sampler.take()
		x.at = start.Add(time.Duration(i) * every)
		c.sampler.add(x)
	}
}
