package vuln

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/socle-dev/socle/internal/store"
)

// nvdCVE is the part of an NVD CVE API 2.0 record socle reads.
type nvdCVE struct {
	ID      string `json:"id"`
	Metrics struct {
		V40 []nvdMetric `json:"cvssMetricV40"`
		V31 []nvdMetric `json:"cvssMetricV31"`
		V30 []nvdMetric `json:"cvssMetricV30"`
		V2  []nvdMetric `json:"cvssMetricV2"`
	} `json:"metrics"`
}

type nvdMetric struct {
	Source   string `json:"source"`
	Type     string `json:"type"`
	CVSSData struct {
		VectorString string  `json:"vectorString"`
		BaseScore    float64 `json:"baseScore"`
	} `json:"cvssData"`
}

// isNVDRecord tells one NVD CVE record (as NVD's API and the mirrors of
// its feeds store them, one file per CVE) by its keys.
func isNVDRecord(keys map[string]bool) bool {
	return keys["id"] && keys["sourceIdentifier"] && (keys["metrics"] || keys["vulnStatus"])
}

// isNVDFeed tells an NVD 2.0 answer or yearly feed.
func isNVDFeed(keys map[string]bool) bool {
	return keys["vulnerabilities"] && (keys["format"] || keys["resultsPerPage"]) && !keys["catalogVersion"]
}

// ParseNVD reads one NVD CVE record.
func ParseNVD(data []byte) (store.Rating, bool, error) {
	var c nvdCVE
	if err := json.Unmarshal(data, &c); err != nil {
		return store.Rating{}, false, fmt.Errorf("parsing NVD record: %w", err)
	}
	return c.rating()
}

// rating is NVD's CVSS of a CVE: v3.1, else v3.0, else v4.0, else v2;
// within a version NVD's own (Primary) metric before a CNA's
// (Secondary). The base score is computed from the vector.
func (c nvdCVE) rating() (store.Rating, bool, error) {
	if !strings.HasPrefix(c.ID, "CVE-") || !validID.MatchString(c.ID) {
		return store.Rating{}, false, fmt.Errorf("NVD record with invalid id %q", c.ID)
	}
	for _, ms := range [][]nvdMetric{c.Metrics.V31, c.Metrics.V30, c.Metrics.V40, c.Metrics.V2} {
		var pick *nvdMetric
		for i := range ms {
			if ms[i].CVSSData.VectorString == "" {
				continue
			}
			if pick == nil || (ms[i].Type == "Primary" && pick.Type != "Primary") {
				pick = &ms[i]
			}
		}
		if pick == nil {
			continue
		}
		score, err := CVSSScore(pick.CVSSData.VectorString)
		if err != nil {
			score = pick.CVSSData.BaseScore
		}
		return store.Rating{ID: c.ID, Source: SourceNVD, Severity: Rating(score), Score: score, Vector: pick.CVSSData.VectorString}, true, nil
	}
	return store.Rating{ID: c.ID, Source: SourceNVD}, false, nil
}

// ParseNVDFeed streams an NVD 2.0 feed or API answer
// ({"vulnerabilities": [{"cve": {...}}, ...]}), calling fn for each CVE
// that has a CVSS metric, with memory bounded by one record.
func ParseNVDFeed(r io.Reader, fn func(store.Rating) error) (n int, err error) {
	dec := json.NewDecoder(r)
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return 0, errors.New("NVD feed: not a JSON object")
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return n, fmt.Errorf("NVD feed: %w", err)
		}
		if key, _ := t.(string); key != "vulnerabilities" {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return n, fmt.Errorf("NVD feed: %w", err)
			}
			continue
		}
		if t, err := dec.Token(); err != nil || t != json.Delim('[') {
			return n, errors.New("NVD feed: vulnerabilities is not a list")
		}
		for dec.More() {
			var item struct {
				CVE nvdCVE `json:"cve"`
			}
			if err := dec.Decode(&item); err != nil {
				return n, fmt.Errorf("NVD feed: record %d: %w", n+1, err)
			}
			n++
			rt, ok, err := item.CVE.rating()
			if err != nil || !ok {
				continue
			}
			if err := fn(rt); err != nil {
				return n, err
			}
		}
		if _, err := dec.Token(); err != nil {
			return n, fmt.Errorf("NVD feed: %w", err)
		}
	}
	return n, nil
}

// isKEV tells CISA's Known Exploited Vulnerabilities catalog.
func isKEV(keys map[string]bool) bool { return keys["catalogVersion"] && keys["vulnerabilities"] }

// ParseKEV reads the KEV catalog.
func ParseKEV(data []byte) ([]store.Exploit, error) {
	var doc struct {
		CatalogVersion  string `json:"catalogVersion"`
		Vulnerabilities []struct {
			CVE        string `json:"cveID"`
			DateAdded  string `json:"dateAdded"`
			DueDate    string `json:"dueDate"`
			Ransomware string `json:"knownRansomwareCampaignUse"`
		} `json:"vulnerabilities"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parsing KEV catalog: %w", err)
	}
	if doc.CatalogVersion == "" {
		return nil, errors.New("KEV catalog without a catalogVersion")
	}
	out := make([]store.Exploit, 0, len(doc.Vulnerabilities))
	for i, v := range doc.Vulnerabilities {
		if !strings.HasPrefix(v.CVE, "CVE-") || !validID.MatchString(v.CVE) {
			return nil, fmt.Errorf("KEV entry %d: invalid cveID %q", i+1, v.CVE)
		}
		added, err := time.Parse(time.DateOnly, v.DateAdded)
		if err != nil {
			return nil, fmt.Errorf("KEV entry %s: dateAdded: %w", v.CVE, err)
		}
		due, _ := time.Parse(time.DateOnly, v.DueDate)
		out = append(out, store.Exploit{ID: v.CVE, KEVAdded: added, KEVDue: due, Ransomware: strings.EqualFold(v.Ransomware, "Known")})
	}
	return out, nil
}

// isEPSS tells FIRST's EPSS CSV by its first bytes: a "#model_version"
// comment or the cve,epss,percentile header.
func isEPSS(head []byte) bool {
	head = bytes.TrimSpace(head)
	return bytes.HasPrefix(head, []byte("#model_version")) || bytes.HasPrefix(head, []byte("cve,epss"))
}

// ParseEPSS streams FIRST's EPSS CSV, calling fn for each batch of at
// most batch scores.
func ParseEPSS(r io.Reader, batch int, fn func([]store.Exploit) error) (int, error) {
	br := bufio.NewReader(r)
	for {
		b, err := br.Peek(1)
		if err != nil || b[0] != '#' {
			break
		}
		if _, err := br.ReadString('\n'); err != nil {
			return 0, errors.New("EPSS: no header")
		}
	}
	cr := csv.NewReader(br)
	cr.ReuseRecord = true
	head, err := cr.Read()
	if err != nil {
		return 0, fmt.Errorf("EPSS: reading the header: %w", err)
	}
	col := map[string]int{}
	for i, h := range head {
		col[strings.TrimSpace(h)] = i
	}
	ci, ok1 := col["cve"]
	ei, ok2 := col["epss"]
	pi, ok3 := col["percentile"]
	if !ok1 || !ok2 || !ok3 {
		return 0, fmt.Errorf("EPSS: header %q lacks cve, epss or percentile", strings.Join(head, ","))
	}
	var out []store.Exploit
	n := 0
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return n, fmt.Errorf("EPSS: line %d: %w", n+2, err)
		}
		if len(rec) <= max(ci, ei, pi) {
			return n, fmt.Errorf("EPSS: line %d: %d columns", n+2, len(rec))
		}
		e, err1 := strconv.ParseFloat(rec[ei], 64)
		p, err2 := strconv.ParseFloat(rec[pi], 64)
		id := rec[ci]
		if err1 != nil || err2 != nil || e < 0 || e > 1 || p < 0 || p > 1 || !strings.HasPrefix(id, "CVE-") || !validID.MatchString(id) {
			return n, fmt.Errorf("EPSS: line %d: bad row %q", n+2, strings.Join(rec, ","))
		}
		out = append(out, store.Exploit{ID: id, EPSS: e, Percentile: p})
		n++
		if len(out) >= batch {
			if err := fn(out); err != nil {
				return n, err
			}
			out = out[:0]
		}
	}
	if len(out) > 0 {
		if err := fn(out); err != nil {
			return n, err
		}
	}
	return n, nil
}
