# Test certificates with the openssl CLI: a root CA per trust anchor and X.509-SVIDs (one URI
# SAN, CA:FALSE, critical keyUsage digitalSignature, serverAuth+clientAuth).

# make_ca DIR NAME
make_ca() {
  local dir="$1" name="$2"
  openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -keyout "$dir/$name-ca.key" -out "$dir/$name-ca.pem" -subj "/O=meshguard-test/CN=$name" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
}

# make_svid DIR NAME CA SPIFFE_ID → DIR/NAME-chain.pem, DIR/NAME.key (0600), DIR/NAME-bundle.pem
make_svid() {
  local dir="$1" name="$2" ca="$3" id="$4"
  cat >"$dir/$name.ext" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=critical,URI:$id
EXT
  (umask 077 && openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$dir/$name.key" -out "$dir/$name.csr" -subj "/O=meshguard-test" 2>/dev/null)
  openssl x509 -req -in "$dir/$name.csr" -CA "$dir/$ca-ca.pem" -CAkey "$dir/$ca-ca.key" -set_serial "0x$(openssl rand -hex 8)" \
    -days 1 -extfile "$dir/$name.ext" -out "$dir/$name.pem" 2>/dev/null
  cp "$dir/$name.pem" "$dir/$name-chain.pem"
  cp "$dir/$ca-ca.pem" "$dir/$name-bundle.pem"
  chmod 600 "$dir/$name.key"
}

# make_mesh_svids: in $WORK, the mesh CA and the SVIDs of details and productpage, whose SPIFFE IDs
# are in DETAILS and PRODUCTPAGE.
make_mesh_svids() {
  DETAILS=spiffe://cluster.local/ns/default/sa/details
  PRODUCTPAGE=spiffe://cluster.local/ns/default/sa/productpage
  make_ca "$WORK" mesh
  make_svid "$WORK" details mesh "$DETAILS"
  make_svid "$WORK" productpage mesh "$PRODUCTPAGE"
}

# tls_yaml NAME: the proxy config line that serves NAME's SVID from $WORK (as make_svid wrote it).
tls_yaml() { echo "tls: {certChain: $WORK/$1-chain.pem, key: $WORK/$1.key, trustBundle: $WORK/$1-bundle.pem}"; }
