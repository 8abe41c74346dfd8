# mailcloak — build, run and install.
#   make run      install dependencies if needed, build, start the daemon on configs/dev.yaml
#   make test     install dependencies if needed, run every test
#   make install  install to $(DESTDIR)$(PREFIX) (program) and /etc (config, service files)

PREFIX      ?= /usr/local
DESTDIR     ?=
LIBDIR      ?= $(PREFIX)/lib/mailcloak
BINDIR      ?= $(PREFIX)/bin
SYSCONFDIR  ?= /etc
UNITDIR     ?= /lib/systemd/system
NODE        ?= node
NPM         ?= npm

DEV_CONFIG  := configs/dev.yaml
DEV_DB      := var/state.db

.PHONY: all deps build run test bench clean install uninstall

all: build

# Dependencies are (re)installed when package.json or the lock file changes.
node_modules/.installed: package.json package-lock.json
	$(NPM) ci --no-audit --no-fund
	@touch $@

deps: node_modules/.installed

build: deps
	$(NPM) run build --silent

run: build
	@mkdir -p var
	@if [ ! -f $(DEV_DB) ]; then \
	  $(NODE) bin/mailcloakctl --db $(DEV_DB) init && \
	  $(NODE) bin/mailcloakctl --db $(DEV_DB) domains add d1.test && \
	  $(NODE) bin/mailcloakctl --db $(DEV_DB) aliases add sales@d1.test alice; \
	fi
	@echo ""
	@echo "mailcloak (development config $(DEV_CONFIG), static demo users alice, bob, carol)"
	@echo "  policy socket:    $(CURDIR)/var/policy.sock"
	@echo "  socketmap socket: $(CURDIR)/var/socketmap.sock"
	@echo "Try, in another terminal:"
	@echo "  postmap -q sales@d1.test socketmap:unix:$(CURDIR)/var/socketmap.sock:alias"
	@echo "  node bin/mailcloakctl --db $(DEV_DB) aliases add info@d1.test bob"
	@echo "Stop with Ctrl-C."
	@echo ""
	exec $(NODE) bin/mailcloak --config $(DEV_CONFIG)

test: deps
	$(NPM) test

bench: deps
	$(NPM) run bench

clean:
	rm -rf dist var

install: build
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(BINDIR)
	cp -R dist package.json package-lock.json db-init.sql README.md SECURITY.md CONTRIBUTING.md admin-ui $(DESTDIR)$(LIBDIR)/
	cp -R docs $(DESTDIR)$(LIBDIR)/
	cp -R bin $(DESTDIR)$(LIBDIR)/
	cd $(DESTDIR)$(LIBDIR) && $(NPM) ci --omit=dev --no-audit --no-fund
	rm -rf $(DESTDIR)$(LIBDIR)/dist/test $(DESTDIR)$(LIBDIR)/dist/bench
	ln -sf $(LIBDIR)/bin/mailcloak $(DESTDIR)$(BINDIR)/mailcloak
	ln -sf $(LIBDIR)/bin/mailcloakctl $(DESTDIR)$(BINDIR)/mailcloakctl
	ln -sf $(LIBDIR)/bin/mailcloak-admin $(DESTDIR)$(BINDIR)/mailcloak-admin
	install -d -m 0750 $(DESTDIR)$(SYSCONFDIR)/mailcloak
	@# The daemon re-reads its config on SIGHUP after dropping root: let its group read it.
	@if [ -z "$(DESTDIR)" ] && getent group mailcloak >/dev/null; then chgrp mailcloak $(SYSCONFDIR)/mailcloak; fi
	install -m 0640 configs/config.yaml.sample $(DESTDIR)$(SYSCONFDIR)/mailcloak/config.yaml.sample
	install -D -m 0755 configs/openrc-mailcloak $(DESTDIR)$(SYSCONFDIR)/init.d/mailcloak
	install -D -m 0644 configs/mailcloak.service $(DESTDIR)$(UNITDIR)/mailcloak.service
	install -D -m 0755 configs/openrc-mailcloak-admin $(DESTDIR)$(SYSCONFDIR)/init.d/mailcloak-admin
	install -D -m 0644 configs/mailcloak-admin.service $(DESTDIR)$(UNITDIR)/mailcloak-admin.service
	@echo "installed; next: cp $(SYSCONFDIR)/mailcloak/config.yaml.sample $(SYSCONFDIR)/mailcloak/config.yaml and edit it"

uninstall:
	rm -rf $(DESTDIR)$(LIBDIR)
	rm -f $(DESTDIR)$(BINDIR)/mailcloak $(DESTDIR)$(BINDIR)/mailcloakctl $(DESTDIR)$(BINDIR)/mailcloak-admin
	rm -f $(DESTDIR)$(SYSCONFDIR)/init.d/mailcloak $(DESTDIR)$(UNITDIR)/mailcloak.service
	rm -f $(DESTDIR)$(SYSCONFDIR)/init.d/mailcloak-admin $(DESTDIR)$(UNITDIR)/mailcloak-admin.service
