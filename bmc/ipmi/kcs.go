package ipmi

import (
	"fmt"
	"regexp"
	"strconv"
)

var devNumRE = regexp.MustCompile(`^/dev/(?:ipmi|ipmi/|ipmidev/)([0-9]+)$`)

// KCSDeviceNumber returns N of /dev/ipmiN (or /dev/ipmi/N, /dev/ipmidev/N).
func KCSDeviceNumber(path string) (int, error) {
	m := devNumRE.FindStringSubmatch(path)
	if m == nil {
		return 0, fmt.Errorf("ipmi kcs: %q is not an IPMI device path (want /dev/ipmiN)", path)
	}
	n, err := strconv.Atoi(m[1])
	if err != nil || n > 255 {
		return 0, fmt.Errorf("ipmi kcs: device number in %q out of range", path)
	}
	return n, nil
}
