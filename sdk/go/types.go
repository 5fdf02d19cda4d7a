package chaos

import (
	"encoding/json"
	"time"
)

// The types below mirror the schemas of the API's OpenAPI document, named as there (Range_u32
// is RangeU32). Integers the document bounds below by 0 are unsigned; optional numbers whose
// zero means something are pointers; optional strings are empty when absent. Open-ended
// objects (plugin parameters, journal fields) are map[string]any.

// ---- Scenarios as written ----------------------------------------------------------------

// Scenario is a scenario as the user writes it. JSON is YAML, so a marshalled Scenario can be
// applied with ApplyScenario.
type Scenario struct {
	APIVersion string       `json:"apiVersion"` // chaosctl.dev/v1alpha1
	Kind       string       `json:"kind"`       // Scenario
	Metadata   Metadata     `json:"metadata"`
	Spec       ScenarioSpec `json:"spec"`
}

// Metadata names a scenario.
type Metadata struct {
	// Name is a DNS-1123 label, unique among scenarios.
	Name        string            `json:"name"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// ScenarioSpec is what a scenario does.
type ScenarioSpec struct {
	// Cluster is the cluster the scenario acts on; workers declare the clusters they reach.
	Cluster string `json:"cluster,omitempty"`
	// WorkerSelector lists labels a worker must carry to run the scenario's instances.
	WorkerSelector map[string]string `json:"workerSelector,omitempty"`
	// Seed derives every random choice; the server picks one at apply time when absent.
	Seed *uint64 `json:"seed,omitempty"`
	// Duration, when set, stops the scenario after that long (30s, 5m, 1h30m).
	Duration string `json:"duration,omitempty"`
	// Volumes configures the volume orchestrator.
	Volumes *VolumesSpec `json:"volumes,omitempty"`
	// Tasks are cluster-wide task instances, for the scenario's life.
	Tasks []TaskSpec `json:"tasks,omitempty"`
	// Probes are what to measure the availability of while the scenario runs.
	Probes []ProbeSpec `json:"probes,omitempty"`
}

// VolumesSpec configures the volume orchestrator.
type VolumesSpec struct {
	// Max is the number of volumes alive at once.
	Max            uint32             `json:"max"`
	Step           *RangeU32          `json:"step,omitempty"`
	StepPeriod     *RangeDuration     `json:"stepPeriod,omitempty"`
	Lifetime       *RangeDuration     `json:"lifetime,omitempty"`
	StorageClasses []string           `json:"storageClasses"`
	Size           string             `json:"size"` // a Kubernetes quantity: 100Mi
	InitialAttach  *AttachWeights     `json:"initialAttach,omitempty"`
	Plugins        []VolumePluginSpec `json:"plugins,omitempty"`
}

// RangeU32 is an inclusive range of counts.
type RangeU32 struct {
	Min uint32 `json:"min"`
	Max uint32 `json:"max"`
}

// RangeDuration is an inclusive range of durations (30s, 5m, 1h30m).
type RangeDuration struct {
	Min string `json:"min"`
	Max string `json:"max"`
}

// AttachWeights weighs attaching a new volume to 0, 1 or 2 nodes.
type AttachWeights struct {
	Zero uint32 `json:"zero"`
	One  uint32 `json:"one"`
	Two  uint32 `json:"two"`
}

// VolumePluginSpec is a per-volume plugin use.
type VolumePluginSpec struct {
	// Name distinguishes two uses of one plugin; the plugin's name by default.
	Name string `json:"name,omitempty"`
	// Plugin is NAME, NAME@VERSION or sha256:DIGEST.
	Plugin string         `json:"plugin"`
	Params map[string]any `json:"params,omitempty"`
	Limits *PluginLimits  `json:"limits,omitempty"`
}

// TaskSpec is a cluster-wide task.
type TaskSpec struct {
	Name string `json:"name"`
	// Plugin is NAME, NAME@VERSION or sha256:DIGEST.
	Plugin string         `json:"plugin"`
	Params map[string]any `json:"params,omitempty"`
	// Replicas is how many instances run at once; 1 by default.
	Replicas uint32        `json:"replicas,omitempty"`
	Limits   *PluginLimits `json:"limits,omitempty"`
}

// PluginLimits are a scenario's limits for one plugin entry; each one given replaces the
// worker's when lower. Sizes are Kubernetes quantities (64Ki).
type PluginLimits struct {
	ReportBytes       string  `json:"reportBytes,omitempty"`
	ReportCounters    *uint64 `json:"reportCounters,omitempty"`
	EventFieldBytes   string  `json:"eventFieldBytes,omitempty"`
	EventBytes        string  `json:"eventBytes,omitempty"`
	EventsPerSecond   *uint64 `json:"eventsPerSecond,omitempty"`
	EventBurst        *uint64 `json:"eventBurst,omitempty"`
	LogLineBytes      string  `json:"logLineBytes,omitempty"`
	LogLinesPerSecond *uint64 `json:"logLinesPerSecond,omitempty"`
	LogBurst          *uint64 `json:"logBurst,omitempty"`
	KubeQPS           *uint64 `json:"kubeQps,omitempty"`
	KubeBurst         *uint64 `json:"kubeBurst,omitempty"`
	OpenWatches       *uint64 `json:"openWatches,omitempty"`
	SummaryBytes      string  `json:"summaryBytes,omitempty"`
}

// ProbeSpec is one availability probe as the user writes it: exactly one of HTTP, Kube,
// ControlPlane and Volumes.
type ProbeSpec struct {
	Name  string `json:"name"`
	Group string `json:"group"`
	// Interval is how often it samples; 1s by default.
	Interval string `json:"interval,omitempty"`
	// Timeout bounds one check; the interval (at most 10s) by default.
	Timeout string `json:"timeout,omitempty"`
	// VantagePoints is how many workers sample it; 1 by default.
	VantagePoints uint32            `json:"vantagePoints,omitempty"`
	HTTP          *HTTPProbe        `json:"http,omitempty"`
	Kube          *KubeProbe        `json:"kube,omitempty"`
	ControlPlane  ControlPlaneCheck `json:"controlPlane,omitempty"`
	Volumes       *VolumesProbe     `json:"volumes,omitempty"`
}

// HTTPProbe checks a service or pod through the cluster's API proxy, or a URL.
type HTTPProbe struct {
	Service *ProxyTarget `json:"service,omitempty"`
	Pod     *ProxyTarget `json:"pod,omitempty"`
	URL     string       `json:"url,omitempty"`
	Path    string       `json:"path,omitempty"`
	// Method is GET (the default) or HEAD.
	Method       string   `json:"method,omitempty"`
	ExpectStatus []uint32 `json:"expectStatus,omitempty"`
	// JQ is a filter over the JSON body: up when its first output is true.
	JQ string `json:"jq,omitempty"`
}

// ProxyTarget is a service or pod behind the API server's proxy.
type ProxyTarget struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Port      string `json:"port,omitempty"`
}

// KubeProbe checks an object's condition, or a minimum of Ready pods.
type KubeProbe struct {
	APIVersion    string          `json:"apiVersion"`
	Kind          string          `json:"kind"`
	Namespace     string          `json:"namespace,omitempty"`
	Name          string          `json:"name,omitempty"`
	LabelSelector string          `json:"labelSelector,omitempty"`
	Condition     *ConditionCheck `json:"condition,omitempty"`
	MinReadyPods  *uint32         `json:"minReadyPods,omitempty"`
}

// ConditionCheck is a condition and the status that counts as up.
type ConditionCheck struct {
	Type   string `json:"type"`
	Status string `json:"status,omitempty"`
}

// VolumesProbe asks for one probe per volume (written `volumes: {}`).
type VolumesProbe struct{}

// ControlPlaneCheck is one of upmeter's control-plane probes.
type ControlPlaneCheck string

// The control-plane probes.
const (
	ControlPlaneAccess             ControlPlaneCheck = "access"
	ControlPlaneNamespace          ControlPlaneCheck = "namespace"
	ControlPlaneBasicFunctionality ControlPlaneCheck = "basic-functionality"
)

// ---- Scenarios as served ------------------------------------------------------------------

// ScenarioView is a scenario as served: what was applied, the metadata the server set, and the
// controller's status.
type ScenarioView struct {
	StoredScenario
	Status ScenarioStatus `json:"status"`
}

// StoredScenario is the scenario as applied.
type StoredScenario struct {
	APIVersion string         `json:"apiVersion"`
	Kind       string         `json:"kind"`
	Metadata   StoredMetadata `json:"metadata"`
	Spec       ScenarioSpec   `json:"spec"`
	// Stop is set once a stop was asked for; re-applying does not clear it.
	Stop *StopRequest `json:"stop,omitempty"`
}

// StoredMetadata is a scenario's metadata with what the server set.
type StoredMetadata struct {
	Name        string            `json:"name"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	// UID is unique per creation.
	UID string `json:"uid"`
	// Generation is 1 at creation, +1 on every change of spec, labels or annotations.
	Generation        uint64    `json:"generation"`
	CreationTimestamp time.Time `json:"creationTimestamp"`
	UpdateTimestamp   time.Time `json:"updateTimestamp"`
	// DeletionTimestamp is set when the scenario is being deleted after it stops.
	DeletionTimestamp *time.Time `json:"deletionTimestamp,omitempty"`
}

// StopRequest records a stop that was asked for.
type StopRequest struct {
	RequestedAt time.Time `json:"requestedAt"`
	Reason      string    `json:"reason"`
}

// ScenarioStatus is the controller's view of a scenario.
type ScenarioStatus struct {
	Phase  ScenarioPhase `json:"phase"`
	Reason string        `json:"reason,omitempty"`
	// ObservedGeneration is the generation this status describes.
	ObservedGeneration uint64       `json:"observedGeneration"`
	StartedAt          *time.Time   `json:"startedAt,omitempty"`
	StoppedAt          *time.Time   `json:"stoppedAt,omitempty"`
	Volumes            VolumeCounts `json:"volumes"`
	// Instances counts instances by observed phase.
	Instances    map[string]uint64    `json:"instances,omitempty"`
	Orchestrator OrchestratorProgress `json:"orchestrator"`
	// Failures that did not stop the scenario.
	Failures []string `json:"failures,omitempty"`
	// Controller is the controller that wrote the status.
	Controller string `json:"controller,omitempty"`
}

// ScenarioPhase is the lifecycle phase of a scenario.
type ScenarioPhase string

// The phases of a scenario.
const (
	PhasePending  ScenarioPhase = "Pending"
	PhaseRunning  ScenarioPhase = "Running"
	PhaseStopping ScenarioPhase = "Stopping"
	PhaseStopped  ScenarioPhase = "Stopped"
	PhaseFailed   ScenarioPhase = "Failed"
)

// VolumeCounts counts a scenario's volumes.
type VolumeCounts struct {
	Alive   uint64 `json:"alive"`
	Started uint64 `json:"started"`
	Done    uint64 `json:"done"`
	Failed  uint64 `json:"failed"`
}

// OrchestratorProgress is where the volume orchestrator stands.
type OrchestratorProgress struct {
	Steps      uint64     `json:"steps"`
	NextStepAt *time.Time `json:"nextStepAt,omitempty"`
}

// ScenarioList is every scenario the caller may see.
type ScenarioList struct {
	Items []ScenarioView `json:"items"`
}

// ApplyResponse is what an apply did, and the scenario after it.
type ApplyResponse struct {
	Result   ApplyResult  `json:"result"`
	Scenario ScenarioView `json:"scenario"`
}

// ApplyResult is what an apply did.
type ApplyResult string

// The results of an apply.
const (
	ApplyCreated    ApplyResult = "created"
	ApplyConfigured ApplyResult = "configured"
	ApplyUnchanged  ApplyResult = "unchanged"
)

// StopBody is the optional body of a stop.
type StopBody struct {
	// Reason is shown in the scenario's status.
	Reason string `json:"reason,omitempty"`
}

// ActionResponse is the answer to an action on one scenario, worker, token or Downtime.
type ActionResponse struct {
	Result ActionResult `json:"result"`
	Name   string       `json:"name"`
}

// ActionResult is what an action did.
type ActionResult string

// The results of actions.
const (
	ActionStopping        ActionResult = "stopping"
	ActionAlreadyStopping ActionResult = "already-stopping"
	ActionDeleted         ActionResult = "deleted"
	ActionDeleting        ActionResult = "deleting"
	ActionCordoned        ActionResult = "cordoned"
	ActionUncordoned      ActionResult = "uncordoned"
	ActionDraining        ActionResult = "draining"
	ActionRevoked         ActionResult = "revoked"
)

// GlobalStopResponse is the answer to stopAll and resumeAll.
type GlobalStopResponse struct {
	// Result is stopping or resumed.
	Result string `json:"result"`
	// Stopped lists the scenarios this call asked to stop.
	Stopped []string `json:"stopped,omitempty"`
}

// ---- Reports and journals ------------------------------------------------------------------

// Report is a scenario's report.
type Report struct {
	Scenario string `json:"scenario"`
	// Phase is the scenario's phase when the report was made.
	Phase   ScenarioPhase `json:"phase"`
	Volumes ReportVolumes `json:"volumes"`
	// RVsCreated counts replicated volumes created by volume-main.
	RVsCreated uint64            `json:"rvsCreated"`
	Checks     []VolumeCheck     `json:"checks"`
	Verdicts   VerdictCounts     `json:"verdicts"`
	Actions    []ActionStats     `json:"actions"`
	Faults     map[string]uint64 `json:"faults"`
	Restarts   []Restart         `json:"restarts"`
	// JournalEntries counts the journal entries the report was made from.
	JournalEntries uint64 `json:"journalEntries"`
	// JournalDropped counts entries plugins sent past their rate limit.
	JournalDropped uint64 `json:"journalDropped,omitempty"`
	// Availability of each of the scenario's probes over its run.
	Availability []ProbeAvailability `json:"availability,omitempty"`
}

// ReportVolumes counts a scenario's volumes in its report.
type ReportVolumes struct {
	Started uint64 `json:"started"`
	Done    uint64 `json:"done"`
	Failed  uint64 `json:"failed"`
	Alive   uint64 `json:"alive"`
}

// VolumeCheck is what a volume's checker saw.
type VolumeCheck struct {
	Volume             string  `json:"volume"`
	RV                 string  `json:"rv"`
	IOReadyTransitions uint64  `json:"ioReadyTransitions"`
	QuorumTransitions  uint64  `json:"quorumTransitions"`
	SecondsNotIOReady  float64 `json:"secondsNotIoReady"`
	SecondsNotQuorum   float64 `json:"secondsNotQuorum"`
	// Verdict is Stable, Recovered, Broken or Unknown.
	Verdict string `json:"verdict"`
	// Final is whether the checker has finished.
	Final bool `json:"final"`
}

// VerdictCounts counts the volumes by verdict.
type VerdictCounts struct {
	Stable    uint64 `json:"stable"`
	Recovered uint64 `json:"recovered"`
	Broken    uint64 `json:"broken"`
	Unknown   uint64 `json:"unknown"`
}

// ActionStats are one plugin action's statistics.
type ActionStats struct {
	Plugin   string `json:"plugin"`
	Action   string `json:"action"`
	Count    uint64 `json:"count"`
	Failures uint64 `json:"failures"`
	P50Ms    uint64 `json:"p50Ms"`
	P99Ms    uint64 `json:"p99Ms"`
	// Unseen counts ends of this action the journal did not get.
	Unseen uint64 `json:"unseen,omitempty"`
}

// Restart is an instance that ran more than once.
type Restart struct {
	Instance string   `json:"instance"`
	Runs     uint64   `json:"runs"`
	Reasons  []string `json:"reasons"`
}

// ProbeAvailability is one probe's availability over a scenario's run, in seconds.
type ProbeAvailability struct {
	Group   string `json:"group"`
	Probe   string `json:"probe"`
	Up      uint32 `json:"up"`
	Down    uint32 `json:"down"`
	Unknown uint32 `json:"unknown"`
	Muted   uint32 `json:"muted"`
	Nodata  uint32 `json:"nodata"`
	// Availability is (up + muted) / (up + muted + down); nil when nothing was measured.
	Availability *float64 `json:"availability,omitempty"`
}

// JournalEvent is one journal entry.
type JournalEvent struct {
	Time time.Time `json:"time"`
	// Kind is action-start, action-end, transition, fault, failure, run-started, ...
	Kind     string         `json:"kind"`
	Instance string         `json:"instance,omitempty"`
	Volume   string         `json:"volume,omitempty"`
	Fields   map[string]any `json:"fields,omitempty"`
}

// EventEntry is a journal entry with its sequence number.
type EventEntry struct {
	Seq uint64 `json:"seq"`
	JournalEvent
}

// EventList is a page of a scenario's journal, oldest first.
type EventList struct {
	Items []EventEntry `json:"items"`
	// Last is the sequence number to ask after next time.
	Last uint64 `json:"last"`
}

// ---- Cluster -------------------------------------------------------------------------------

// InstanceList lists task instances.
type InstanceList struct {
	Items []InstanceView `json:"items"`
}

// InstanceView is a task instance with its observed status.
type InstanceView struct {
	Instance TaskInstance `json:"instance"`
	// Status is nil until a worker has reported.
	Status *InstanceStatus `json:"status,omitempty"`
}

// TaskInstance is a task instance, as the controller wrote it.
type TaskInstance struct {
	ID             string            `json:"id"`
	Scenario       string            `json:"scenario"`
	Cluster        string            `json:"cluster"`
	WorkerSelector map[string]string `json:"workerSelector,omitempty"`
	Plugin         string            `json:"plugin"`
	Params         map[string]any    `json:"params"`
	Seed           uint64            `json:"seed"`
	Volume         *VolumeRef        `json:"volume,omitempty"`
	// Desired is Run or Stop.
	Desired   string    `json:"desired"`
	Attempt   uint32    `json:"attempt"`
	CreatedAt time.Time `json:"createdAt"`
	// Role is task, volumeMain, volumeBeforeMain or volumeAfterMain.
	Role       string        `json:"role,omitempty"`
	StopReason string        `json:"stopReason,omitempty"`
	Failure    string        `json:"failure,omitempty"`
	Limits     *PluginLimits `json:"limits,omitempty"`
	Cleanup    bool          `json:"cleanup,omitempty"`
	Probe      *ProbeBinding `json:"probe,omitempty"`
}

// VolumeRef is the volume an instance belongs to.
type VolumeRef struct {
	Index  uint64    `json:"index"`
	Name   string    `json:"name"`
	EndsAt time.Time `json:"endsAt"`
}

// ProbeBinding is the probe an instance samples.
type ProbeBinding struct {
	Group      string `json:"group"`
	Probe      string `json:"probe"`
	IntervalMs uint64 `json:"intervalMs"`
	TimeoutMs  uint64 `json:"timeoutMs"`
}

// InstanceStatus is an instance's status, as its worker wrote it.
type InstanceStatus struct {
	// Phase is Pending, Scheduled, Running, Stopping, Succeeded or Failed.
	Phase     string              `json:"phase"`
	Worker    string              `json:"worker,omitempty"`
	Attempt   uint32              `json:"attempt"`
	Placement uint32              `json:"placement"`
	Reason    string              `json:"reason,omitempty"`
	Counters  map[string]int64    `json:"counters,omitempty"`
	State     map[string]any      `json:"state,omitempty"`
	LastError string              `json:"lastError,omitempty"`
	Limited   map[string]LimitHit `json:"limited,omitempty"`
	StartedAt *time.Time          `json:"startedAt,omitempty"`
	UpdatedAt *time.Time          `json:"updatedAt,omitempty"`
}

// LimitHit is a limit an instance went past, on one channel.
type LimitHit struct {
	Count  uint64 `json:"count"`
	Reason string `json:"reason"`
}

// WorkerList lists the live workers.
type WorkerList struct {
	Items []WorkerRecord `json:"items"`
}

// WorkerRecord is a worker's registration.
type WorkerRecord struct {
	Name       string            `json:"name"`
	Slots      uint32            `json:"slots"`
	Labels     map[string]string `json:"labels,omitempty"`
	Clusters   []string          `json:"clusters,omitempty"`
	ProbeHosts []string          `json:"probeHosts,omitempty"`
	Version    string            `json:"version"`
	Usage      WorkerUsage       `json:"usage"`
	Cordoned   bool              `json:"cordoned,omitempty"`
	Draining   bool              `json:"draining,omitempty"`
	// Assigned counts the instances assigned to it now.
	Assigned  *uint32   `json:"assigned,omitempty"`
	StartedAt time.Time `json:"startedAt"`
}

// WorkerUsage is what a worker uses.
type WorkerUsage struct {
	CPUMillis       uint64   `json:"cpuMillis"`
	MemoryBytes     uint64   `json:"memoryBytes"`
	Running         uint32   `json:"running"`
	EtcdKnown       uint32   `json:"etcdKnown"`
	EtcdReachable   uint32   `json:"etcdReachable"`
	EtcdUnreachable []string `json:"etcdUnreachable,omitempty"`
}

// ---- Plugins -------------------------------------------------------------------------------

// PluginList lists pushed plugins, by name then version.
type PluginList struct {
	Items []PluginMeta `json:"items"`
}

// PluginMeta describes a pushed plugin.
type PluginMeta struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	// Digest is the sha256 of the bytes, lowercase hex.
	Digest string `json:"digest"`
	Size   uint64 `json:"size"`
	// Capabilities is what it declared ({"rules": [...]}); null when nothing.
	Capabilities     json.RawMessage `json:"capabilities,omitempty"`
	InterfaceVersion string          `json:"interfaceVersion,omitempty"`
	PushedAt         time.Time       `json:"pushedAt"`
}

// PushResponse is the answer to a push.
type PushResponse struct {
	// Result is created or unchanged.
	Result string     `json:"result"`
	Plugin PluginMeta `json:"plugin"`
}

// ---- Security ------------------------------------------------------------------------------

// Role is what a token may do.
type Role string

// The roles.
const (
	RoleViewer       Role = "viewer"
	RoleOperator     Role = "operator"
	RolePluginAuthor Role = "plugin-author"
	RoleAdmin        Role = "admin"
)

// TokenRequest asks for a token.
type TokenRequest struct {
	// Name is a DNS label, unique among tokens.
	Name string `json:"name"`
	Role Role   `json:"role"`
	// Clusters limits a viewer or operator token to these clusters.
	Clusters []string `json:"clusters,omitempty"`
	// ExpiresIn is how long it lives (30d, 12h); until revoked when empty.
	ExpiresIn string `json:"expiresIn,omitempty"`
}

// TokenCreated is a token made, with its secret, shown this once.
type TokenCreated struct {
	// Token is the secret, to send as the bearer token.
	Token  string      `json:"token"`
	Record TokenRecord `json:"record"`
}

// TokenRecord describes a token (never its secret).
type TokenRecord struct {
	Name      string     `json:"name"`
	Role      Role       `json:"role"`
	Clusters  []string   `json:"clusters,omitempty"`
	Expires   *time.Time `json:"expires,omitempty"`
	CreatedBy string     `json:"createdBy"`
	Created   time.Time  `json:"created"`
	// LastUsed is updated at most once a minute.
	LastUsed *time.Time `json:"lastUsed,omitempty"`
}

// TokenList lists the tokens.
type TokenList struct {
	Items []TokenRecord `json:"items"`
}

// AuditList is a window of the audit trail, oldest first.
type AuditList struct {
	Items []AuditEntry `json:"items"`
	// Truncated says more entries matched than the limit; these are the newest.
	Truncated bool `json:"truncated,omitempty"`
}

// AuditEntry is one request in the audit trail.
type AuditEntry struct {
	Time time.Time `json:"time"`
	// Who is the token's name; empty when no token was accepted.
	Who    string `json:"who"`
	Role   Role   `json:"role,omitempty"`
	Method string `json:"method"`
	Path   string `json:"path"`
	// Target is what the request was about: a scenario, worker, plugin or token name.
	Target string `json:"target,omitempty"`
	Status int    `json:"status"`
	// Result is ok, or why the request failed or was refused.
	Result string `json:"result"`
	Source string `json:"source,omitempty"`
}

// ---- Availability --------------------------------------------------------------------------

// ProbeGroups lists the probe groups with what each probe shows now.
type ProbeGroups struct {
	Groups []ProbeGroup `json:"groups"`
}

// ProbeGroup is one group of probes.
type ProbeGroup struct {
	Group  string         `json:"group"`
	Probes []ProbeSummary `json:"probes"`
}

// ProbeSummary is a probe and its live state (the most optimistic of its vantage points).
type ProbeSummary struct {
	Group    string `json:"group"`
	Probe    string `json:"probe"`
	Scenario string `json:"scenario"`
	// State is empty while no vantage point measures it.
	State         ProbeState  `json:"state,omitempty"`
	Since         *time.Time  `json:"since,omitempty"`
	VantagePoints []LiveState `json:"vantagePoints"`
}

// ProbeState is what a probe reported.
type ProbeState string

// The states of a probe.
const (
	ProbeUp      ProbeState = "up"
	ProbeDown    ProbeState = "down"
	ProbeUnknown ProbeState = "unknown"
)

// LiveState is what one vantage point sees of a probe now.
type LiveState struct {
	Group    string     `json:"group"`
	Probe    string     `json:"probe"`
	State    ProbeState `json:"state"`
	Since    time.Time  `json:"since"`
	Detail   string     `json:"detail"`
	Worker   string     `json:"worker"`
	Scenario string     `json:"scenario"`
	Instance string     `json:"instance"`
}

// AvailabilityRange is, per probe and step, the seconds up, down, unknown, muted and without
// data, and the availability.
type AvailabilityRange struct {
	// From and To are the range as computed (unix seconds), aligned to the step.
	From   int64          `json:"from"`
	To     int64          `json:"to"`
	Step   int64          `json:"step"`
	Muted  []DowntimeType `json:"muted"`
	Probes []ProbeRange   `json:"probes"`
}

// Probe returns the range of the probe group/probe, or nil.
func (r *AvailabilityRange) Probe(group, probe string) *ProbeRange {
	for i := range r.Probes {
		if r.Probes[i].Group == group && r.Probes[i].Probe == probe {
			return &r.Probes[i]
		}
	}
	return nil
}

// ProbeRange is the range of one probe.
type ProbeRange struct {
	Group string     `json:"group"`
	Probe string     `json:"probe"`
	Steps []StepCell `json:"steps"`
	// Total is the whole range as one cell.
	Total StepCell `json:"total"`
}

// StepCell is one step, [Start, End) in unix seconds, and its seconds by state.
type StepCell struct {
	Start   int64  `json:"start"`
	End     int64  `json:"end"`
	Up      uint32 `json:"up"`
	Down    uint32 `json:"down"`
	Unknown uint32 `json:"unknown"`
	Muted   uint32 `json:"muted"`
	Nodata  uint32 `json:"nodata"`
	// Availability is (up + muted) / (up + muted + down); nil when nothing was measured.
	Availability *float64      `json:"availability,omitempty"`
	Downtimes    []DowntimeRef `json:"downtimes"`
}

// DowntimeRef is a downtime window named in a step.
type DowntimeRef struct {
	Name string       `json:"name"`
	Type DowntimeType `json:"type"`
	// Start and End are the window in unix seconds, End exclusive.
	Start int64 `json:"start"`
	End   int64 `json:"end"`
}

// DowntimeType is what kind of downtime a window declares.
type DowntimeType string

// The kinds of downtime.
const (
	DowntimeAccident                  DowntimeType = "Accident"
	DowntimeMaintenance               DowntimeType = "Maintenance"
	DowntimeInfrastructureMaintenance DowntimeType = "InfrastructureMaintenance"
	DowntimeInfrastructureAccident    DowntimeType = "InfrastructureAccident"
)

// DowntimeList lists every stored Downtime.
type DowntimeList struct {
	Downtimes []StoredDowntime `json:"downtimes"`
}

// StoredDowntime is a Downtime as stored.
type StoredDowntime struct {
	Name string `json:"name"`
	// Source is user, or cluster.<name>.
	Source  string           `json:"source"`
	Windows []DowntimeWindow `json:"windows"`
}

// DowntimeWindow is one declared window of a downtime.
type DowntimeWindow struct {
	StartDate time.Time `json:"startDate"`
	// EndDate is exclusive.
	EndDate     time.Time    `json:"endDate"`
	Type        DowntimeType `json:"type"`
	Description string       `json:"description,omitempty"`
	// Affected lists the probe groups the window affects.
	Affected []string `json:"affected,omitempty"`
}

// DowntimeApplied is what applyDowntime did.
type DowntimeApplied struct {
	Result   ApplyResult    `json:"result"`
	Downtime StoredDowntime `json:"downtime"`
}
