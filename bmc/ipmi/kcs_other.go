//go:build !linux

package ipmi

import (
	"context"
	"fmt"
)

// OpenKCS is only available on Linux (the ipmi_devintf driver).
func OpenKCS(ctx context.Context, device string, opts Options) (*Client, error) {
	return nil, fmt.Errorf("ipmi kcs: %s: in-band IPMI needs Linux", device)
}
