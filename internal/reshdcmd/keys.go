package reshdcmd

import (
	"crypto/tls"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"resh/auth"
	"resh/cluster"
)

// secure prepares reshd's keys in RESH_HOME, creating the host key and, if
// missing, an authorized_keys listing the local identity, and returns the
// TLS configuration: a master's also admits the executors listed in
// RESH_HOME/executors.
func secure(log *slog.Logger, master bool) (*tls.Config, error) {
	home, err := auth.Home()
	if err != nil {
		return nil, err
	}
	hostPath := filepath.Join(home, auth.HostKeyFile)
	hostKey, created, err := auth.LoadOrCreateIdentity(hostPath)
	if err != nil {
		return nil, err
	}
	if created {
		log.Info("reshd: created host key", "path", hostPath)
	}
	log.Info("reshd: host key", "fingerprint", auth.Fingerprint(auth.PublicKey(hostKey)), "path", hostPath)
	akPath := filepath.Join(home, auth.AuthorizedKeysFile)
	if _, err := os.Stat(akPath); errors.Is(err, fs.ErrNotExist) {
		idPath := filepath.Join(home, auth.IdentityFile)
		id, created, err := auth.LoadOrCreateIdentity(idPath)
		if err != nil {
			return nil, err
		}
		if created {
			log.Info("reshd: created identity", "path", idPath)
		}
		pub := auth.PublicKey(id)
		if made, err := auth.EnsureAuthorizedKeys(akPath, pub, "identity "+idPath); err != nil {
			return nil, err
		} else if made {
			log.Info("reshd: created authorized_keys with the key of this user's identity: only it can connect", "path", akPath, "fingerprint", auth.Fingerprint(pub))
		}
	}
	keys, bad, err := auth.ReadAuthorizedKeys(akPath)
	if err != nil {
		return nil, err
	}
	for _, b := range bad {
		log.Warn("reshd: bad line in authorized_keys, skipped", "err", b)
	}
	log.Info("reshd: clients admitted by authorized_keys (re-read on each connection)", "path", akPath, "keys", len(keys))
	if !master {
		return auth.ServerTLS(hostKey, akPath, log, auth.NewLimiter())
	}
	exPath := filepath.Join(home, auth.ExecutorsFile)
	exKeys, bad, err := auth.ReadAuthorizedKeys(exPath)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	for _, b := range bad {
		log.Warn("reshd: bad line in executors, skipped", "err", b)
	}
	log.Info("reshd: executors admitted by their key in executors (re-read on each join)", "path", exPath, "keys", len(exKeys))
	return auth.MasterTLS(hostKey, akPath, exPath, cluster.LinkALPN, log, auth.NewLimiter())
}
