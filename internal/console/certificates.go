package console

import (
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/ringd/ringd/internal/credentials"
	"github.com/ringd/ringd/internal/httpapi"
)

// expiryWarningDays is when the certificate list starts warning.
const expiryWarningDays = 30

// certRow is one certificate in the list.
type certRow struct {
	httpapi.Certificate
	New     bool
	Warning string // "expired" or "expires soon"
}

type certificatesView struct {
	Rows     []certRow
	New      []certRow // just uploaded: their IDs shown large
	Admin    bool
	Warnings int
}

func (c *Console) certificatesPage(w http.ResponseWriter, r *http.Request, s *session) error {
	app, err := c.app(r)
	if err != nil {
		return err
	}
	certs, err := c.cfg.Services.Certificates(r.Context(), app.SDKAppID)
	if err != nil {
		return err
	}
	var fresh []int64
	for f := range strings.SplitSeq(r.URL.Query().Get("new"), ",") {
		if id, err := strconv.ParseInt(f, 10, 64); err == nil {
			fresh = append(fresh, id)
		}
	}
	v := certificatesView{Admin: s.principal.Admin}
	for _, cert := range certs {
		row := certRow{Certificate: cert, New: slices.Contains(fresh, cert.ID), Warning: expiryWarning(cert.DaysLeft)}
		if row.Warning != "" {
			v.Warnings++
		}
		v.Rows = append(v.Rows, row)
		if row.New {
			v.New = append(v.New, row)
		}
	}
	c.render(w, r, s, http.StatusOK, "certificates", pageData{Title: "Certificates", Nav: "certificates", App: app, Data: v})
	return nil
}

func expiryWarning(daysLeft *int) string {
	switch {
	case daysLeft == nil:
		return ""
	case *daysLeft < 0:
		return "expired"
	case *daysLeft <= expiryWarningDays:
		return "expires soon"
	}
	return ""
}

// uploadCertificate takes the .p12 or .p8 form (checkCSRF has parsed the
// multipart body within its limit) and shows the new certificate IDs.
func (c *Console) uploadCertificate(w http.ResponseWriter, r *http.Request, s *session) error {
	id, _ := pathApp(r)
	to := appURL(id, "/certificates")
	up, err := readUpload(r)
	if err != nil {
		return back(w, r, s, to, err)
	}
	certs, err := c.cfg.Services.UploadCertificate(r.Context(), id, up)
	if err != nil {
		return back(w, r, s, to+"#upload", err)
	}
	ids := make([]string, 0, len(certs))
	for _, cert := range certs {
		ids = append(ids, strconv.FormatInt(cert.ID, 10))
	}
	http.Redirect(w, r, to+"?new="+strings.Join(ids, ","), http.StatusSeeOther)
	return nil
}

func readUpload(r *http.Request) (httpapi.Upload, error) {
	if r.MultipartForm == nil {
		return httpapi.Upload{}, &pageError{status: http.StatusBadRequest, msg: "Send the form with its file."}
	}
	f := r.PostFormValue
	up := httpapi.Upload{Environment: f("environment")}
	switch f("type") {
	case "p12":
		up.Password = f("password")
	case "p8":
		up.KeyID, up.TeamID, up.BundleID = strings.TrimSpace(f("key_id")), strings.TrimSpace(f("team_id")), strings.TrimSpace(f("bundle_id"))
		if up.KeyID == "" || up.TeamID == "" || up.BundleID == "" {
			return up, &pageError{status: http.StatusBadRequest, msg: "A .p8 key needs its key ID, team ID and the app's bundle ID."}
		}
	default:
		return up, &pageError{status: http.StatusBadRequest, msg: "Pick .p12 or .p8."}
	}
	file, hdr, err := r.FormFile("file")
	if errors.Is(err, http.ErrMissingFile) {
		return up, &pageError{status: http.StatusBadRequest, msg: "Choose the certificate or key file."}
	}
	if err != nil {
		return up, err
	}
	defer file.Close()
	up.FileName = hdr.Filename
	up.File, err = io.ReadAll(io.LimitReader(file, credentials.MaxFileSize+1))
	return up, err
}

func (c *Console) deleteCertificate(w http.ResponseWriter, r *http.Request, s *session) error {
	app, _ := pathApp(r)
	to := appURL(app, "/certificates")
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return &pageError{status: http.StatusBadRequest, msg: "The certificate ID must be a number."}
	}
	force := r.PostFormValue("force") == "on"
	if err := c.cfg.Services.DeleteCertificate(r.Context(), app, id, force); err != nil {
		return back(w, r, s, to, err)
	}
	c.log.Info("console: certificate deleted", "sdkappid", app, "certificate_id", id, "force", force)
	s.setFlash("ok", "Certificate "+strconv.FormatInt(id, 10)+" deleted.")
	http.Redirect(w, r, to, http.StatusSeeOther)
	return nil
}
