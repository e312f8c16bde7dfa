package graph

import "github.com/csam-onnx/csam-onnx/tensor"

// Model is an ONNX model in memory: the graph plus everything the file says
// about it. onnxio converts it to and from the ONNX protobuf losslessly:
// fields the IR does not interpret are kept (as Unknown bytes, or as opaque
// encoded messages) and written back unchanged.
type Model struct {
	IRVersion       int64
	OpsetImports    []OpsetImport
	ProducerName    string
	ProducerVersion string
	Domain          string
	ModelVersion    int64
	DocString       string
	Graph           *Graph
	Metadata        []StringPair

	// Opaque holds encoded top-level fields the IR carries without
	// interpreting them (training_info, functions, configuration), in file
	// order, as (field number, message bytes).
	Opaque []OpaqueField

	// Present records which optional scalar fields were set in the file, so
	// that a round trip reproduces an explicit zero or empty string.
	Present Presence

	// Unknown is the wire encoding of fields this version does not know.
	Unknown []byte
}

// Presence records which optional scalar fields of a message were present.
// Keys are the protobuf field names (for example "doc_string").
type Presence map[string]bool

// OpaqueField is a protobuf field kept as its encoded bytes.
type OpaqueField struct {
	Number int32
	Bytes  []byte
}

// OpsetImport is one operator set the model depends on. Domain "" and
// "ai.onnx" both mean the default ONNX domain.
type OpsetImport struct {
	Domain  string
	Version int64
	Present Presence
	Unknown []byte
}

// StringPair is an ONNX StringStringEntryProto (metadata_props, external
// data locations).
type StringPair struct {
	Key, Value string
	Present    Presence
	Unknown    []byte
}

// Graph is a computation graph: nodes in file order, the initializers they
// read, the graph inputs and outputs, and any shapes the file declares for
// intermediate values.
type Graph struct {
	Name         string
	DocString    string
	Nodes        []*Node
	Initializers []*Initializer
	// SparseInitializers are kept separately so that writing the model puts
	// them back as sparse_initializer; Value holds the densified tensor.
	SparseInitializers []*SparseInitializer
	Inputs             []*ValueInfo
	Outputs            []*ValueInfo
	ValueInfo          []*ValueInfo
	Metadata           []StringPair
	// Opaque: quantization_annotation and other carried fields.
	Opaque  []OpaqueField
	Present Presence
	Unknown []byte
}

// Node is one operator application.
type Node struct {
	Name      string
	OpType    string
	Domain    string
	Inputs    []string // "" marks an omitted optional input
	Outputs   []string
	Attrs     []*Attribute
	DocString string
	Overload  string
	Metadata  []StringPair
	Opaque    []OpaqueField // device_configurations and other carried fields
	Present   Presence
	Unknown   []byte
}

// AttrType is the ONNX AttributeProto.AttributeType.
type AttrType int32

// Attribute types, numbered as in ONNX.
const (
	AttrUndefined     AttrType = 0
	AttrFloat         AttrType = 1
	AttrInt           AttrType = 2
	AttrString        AttrType = 3
	AttrTensor        AttrType = 4
	AttrGraph         AttrType = 5
	AttrFloats        AttrType = 6
	AttrInts          AttrType = 7
	AttrStrings       AttrType = 8
	AttrTensors       AttrType = 9
	AttrGraphs        AttrType = 10
	AttrSparseTensor  AttrType = 11
	AttrSparseTensors AttrType = 12
	AttrTypeProto     AttrType = 13
	AttrTypeProtos    AttrType = 14
)

// Attribute is a named node attribute. Type says which value field is used.
type Attribute struct {
	Name        string
	Type        AttrType
	F           float32
	I           int64
	S           []byte
	T           *Initializer
	G           *Graph
	Floats      []float32
	Ints        []int64
	Strings     [][]byte
	Tensors     []*Initializer
	Graphs      []*Graph
	RefAttrName string
	DocString   string
	// Opaque: sparse tensors and type protos, carried encoded.
	Opaque  []OpaqueField
	Present Presence
	Unknown []byte
}

// Initializer is a named constant tensor: a graph initializer, or the value
// of a tensor attribute.
type Initializer struct {
	Name      string
	DocString string
	// Value is the decoded tensor; Value.DType is the ONNX data type and
	// Value.Shape the dims.
	Value *tensor.Tensor
	// Encoding records how the file stored the data so that writing it back
	// gives the same message.
	Encoding Encoding
	Metadata []StringPair
	Present  Presence
	Unknown  []byte
}

// Encoding is how a tensor's data was (or is to be) stored.
type Encoding struct {
	// RawData: the data was in raw_data (little-endian bytes) rather than a
	// typed repeated field.
	RawData bool
	// External: the data lived in an external file. The entries are the
	// file's external_data key/value pairs (location, offset, length,
	// checksum) as read; DataLocationPresent records data_location.
	External []StringPair
	// DataLocation is the raw data_location field (0 default, 1 external).
	DataLocation int32
	// Segment, when non-nil, is the [begin, end] segment field.
	Segment *Segment
}

// Segment is TensorProto.Segment.
type Segment struct {
	Begin, End int64
	Present    Presence
	Unknown    []byte
}

// SparseInitializer is an ONNX SparseTensorProto initializer. Values and
// Indices are kept as stored; Dense is the densified tensor the rest of the
// IR reads (its name is Values.Name).
type SparseInitializer struct {
	Values  *Initializer
	Indices *Initializer
	Dims    []int64
	Dense   *Initializer
	Present Presence
	Unknown []byte
}

// ValueInfo names a value and, where known, its type and shape.
type ValueInfo struct {
	Name      string
	DocString string
	// Type is nil when the file gave no type.
	Type     *Type
	Metadata []StringPair
	Present  Presence
	Unknown  []byte
}

// Type is a value's type. The engine understands tensor types; any other
// kind (sequence, map, optional, sparse, opaque) is carried encoded in
// Opaque.
type Type struct {
	// IsTensor reports whether this is a tensor_type.
	IsTensor bool
	Elem     tensor.DType
	// Shape is nil when the tensor type has no shape (unknown rank).
	Shape      []Dim
	HasShape   bool
	Denotation string
	Opaque     []OpaqueField
	Present    Presence
	Unknown    []byte
	// TensorUnknown and ShapeUnknown are unknown bytes of the nested
	// tensor_type and shape messages.
	TensorUnknown []byte
	ShapeUnknown  []byte
	TensorPresent Presence
}

// Dim is one dimension: a fixed size, a symbolic name, or unknown.
type Dim struct {
	Value      int64
	Param      string
	HasValue   bool
	HasParam   bool
	Denotation string
	Present    Presence
	Unknown    []byte
}

// String renders the dimension as its value, its symbol, or "?".
func (d Dim) String() string {
	switch {
	case d.HasValue:
		return itoa(d.Value)
	case d.HasParam:
		return d.Param
	}
	return "?"
}

func itoa(v int64) string {
	if v == 0 {
		return "0"
	}
	neg := v < 0
	if neg {
		v = -v
	}
	var b [20]byte
	i := len(b)
	for v > 0 {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}

// Attr returns the attribute with the given name, or nil.
func (n *Node) Attr(name string) *Attribute {
	for _, a := range n.Attrs {
		if a.Name == name {
			return a
		}
	}
	return nil
}

// AttrInt returns the int attribute name, or def when it is absent.
func (n *Node) AttrInt(name string, def int64) int64 {
	if a := n.Attr(name); a != nil {
		return a.I
	}
	return def
}

// AttrFloat returns the float attribute name, or def when it is absent.
func (n *Node) AttrFloat(name string, def float32) float32 {
	if a := n.Attr(name); a != nil {
		return a.F
	}
	return def
}

// AttrInts returns the ints attribute name, or def when it is absent.
func (n *Node) AttrInts(name string, def []int64) []int64 {
	if a := n.Attr(name); a != nil {
		return a.Ints
	}
	return def
}

// AttrString returns the string attribute name, or def when it is absent.
func (n *Node) AttrString(name string, def string) string {
	if a := n.Attr(name); a != nil {
		return string(a.S)
	}
	return def
}

// Opset returns the model's version of the default ONNX domain, or 0.
func (m *Model) Opset() int64 {
	for _, o := range m.OpsetImports {
		if o.Domain == "" || o.Domain == "ai.onnx" {
			return o.Version
		}
	}
	return 0
}

// Initializer returns the initializer (dense or densified sparse) named
// name, or nil.
func (g *Graph) Initializer(name string) *Initializer {
	for _, in := range g.Initializers {
		if in.Name == name {
			return in
		}
	}
	for _, s := range g.SparseInitializers {
		if s.Dense != nil && s.Dense.Name == name {
			return s.Dense
		}
	}
	return nil
}
