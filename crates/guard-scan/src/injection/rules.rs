//! The injection rules: `regex-lite` patterns in categories, each with a weight.
//!
//! A rule is a lead (words or phrases, `|`-separated, or a `%fragment%`) and the rest of
//! its pattern: the detector tries a rule only where one of its lead phrases starts, and
//! matches the pattern anchored there, so a text costs a lookup per word rather than a
//! scan per rule.
//!
//! Skeleton rules are written in plain lowercase text and folded like the text they match
//! (see [`super::skeleton`]); in them a space stands for an optional space (spaced-out
//! letters are joined in the skeleton) and `~` for one arbitrary word. Skeleton words with
//! digits are written as the skeleton has them (`base64` → `base6a`). Raw rules match the
//! text as sent, case-insensitively, for what folding would erase (template tokens,
//! markup); their leads are literal text.

use super::Category::{self, *};

/// Which form of the text a rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// The folded skeleton.
    Skeleton,
    /// The text as sent.
    Raw,
}

/// One rule: a hit adds `weight` to its category; a negative weight marks text that makes
/// an instruction override less likely to be an attack (the user's own earlier words).
pub struct Rule {
    /// What the rule detects; `None` for a mitigating rule.
    pub category: Option<Category>,
    /// Points on a 0–100 scale; 50 is the default detection threshold.
    pub weight: i32,
    /// Which form of the text it matches.
    pub form: Form,
    /// Where a match starts: `|`-separated words or phrases (or a `%fragment%`) for
    /// skeleton rules, space-separated literal texts for raw rules.
    pub lead: &'static str,
    /// The pattern after the lead, with `%name%` fragments.
    pub rest: &'static str,
    /// Words one of which a match must contain (see [`Rule::near`]).
    pub near: Option<&'static str>,
}

const fn rule(category: Category, weight: i32, lead: &'static str, rest: &'static str) -> Rule {
    Rule {
        category: Some(category),
        weight,
        form: Form::Skeleton,
        lead,
        rest,
        near: None,
    }
}

const fn raw(category: Category, weight: i32, lead: &'static str, rest: &'static str) -> Rule {
    Rule {
        category: Some(category),
        weight,
        form: Form::Raw,
        lead,
        rest,
        near: None,
    }
}

impl Rule {
    /// A skeleton rule can only match where one of `words` (`|`-separated, or a
    /// `%fragment%`; for a phrase, its first word) is among the [`NEAR_WORDS`] words from
    /// its lead on; a raw rule only where one of them (space-separated texts) is within
    /// its span. A cheap test that spares most regex runs.
    const fn near(self, words: &'static str) -> Rule {
        Rule {
            near: Some(words),
            ..self
        }
    }
}

/// How many words from a rule's lead on its `near` words are looked for.
pub const NEAR_WORDS: usize = 12;

const fn mitigation(weight: i32, lead: &'static str, rest: &'static str) -> Rule {
    Rule {
        category: None,
        weight,
        form: Form::Skeleton,
        lead,
        rest,
        near: None,
    }
}

/// Word lists shared by several rules, substituted for `%name%` (plain phrases, so that
/// they can serve as leads).
pub const FRAGMENTS: &[(&str, &str)] = &[
    (
        "override",
        "ignore|disregard|forget|overlook|override|overriding|overrule|overruling|supersede|superseding|bypass|abandon|discard|dismiss|neglect|skip|drop|circumvent|set aside|put aside|throw out|throw away|do not follow|dont follow|stop following|no longer follow|cease following|do not obey|dont obey|stop obeying|do not adhere to|dont adhere to|disobey|defy|violate|ditch|scrap|erase|wipe|delete|remove|unlearn|let go of|nullify|cancel|revoke|suspend|deactivate|disable|turn off|switch off|lift",
    ),
    (
        "qualifier",
        "all|any|every|each|previous|prior|preceding|above|earlier|former|initial|original|old|existing|your|system|developer|safety|built in|default|hidden|programmed|preset|these|those|other|openai|anthropic|given|their|operator|operators|usual|standard",
    ),
    (
        "rules",
        "instruction|instructions|instruction set|rule|rules|ruleset|guideline|guidelines|directive|directives|prompt|prompts|constraint|constraints|restriction|restrictions|guardrail|guardrails|guard rails|command|commands|orders|programming|policies|policy|protocol|protocols|filter|filters|limitation|limitations|limits|boundaries|safeguard|safeguards|training|conditioning|ethics|morals|moral code|principles|values|alignment|censorship|content policy|content policies|directions|briefing|persona|configuration|settings|task|tasks|assignment|assignments|guidance|setup|preamble|brief|mandate|playbook",
    ),
    (
        "limits",
        "restrictions|filters|filtering|censorship|limitations|limits|rules|guidelines|guardrails|ethics|morals|morality|ethical guidelines|ethical constraints|ethical boundaries|ethical considerations|ethical principles|ethical standards|moral guidelines|moral constraints|moral boundaries|moral principles|moral standards|safety guidelines|safety measures|safety filters|safety protocols|safety training|safety rules|content policy|content policies|usage policy|usage policies|openai policy|openai policies|programming|alignment|boundaries|constraints|policies",
    ),
    (
        "show",
        "reveal|show|print|display|output|repeat|recite|echo|dump|leak|expose|disclose|share|tell|paste|copy|list|return|spell out|give|write out|write down|type out|quote|read back|read out|provide|reproduce|state|summarize|summarise|translate|encode|describe|explain|send",
    ),
    (
        "prompt",
        "system prompt|system message|prompt|instruction|instructions|directives|initial prompt|configuration|guidelines|rules|preprompt|pre prompt|programming|briefing|setup|context|hidden text|first message|system instructions",
    ),
];

/// Every rule, by category.
pub const RULES: &[Rule] = &[
    // Instruction override.
    rule(InstructionOverride, 80, "%override%", r" ~{0,2}(?:%qualifier%) ~{0,3}(?:%rules%)\b").near("%rules%"),
    rule(InstructionOverride, 80, "%override%", r" ~{0,2}(?:%rules%) ~{0,2}(?:in|of|from|set by|given by|provided by|written by|made by|imposed by|defined by) (?:your |the )?(?:system|developers?|openai|anthropic|operator|creators?|original|initial|hidden|company|administrators?)\b").near("system|developer|developers|openai|anthropic|operator|creator|creators|original|initial|hidden|company|administrator|administrators"),
    rule(InstructionOverride, 60, "ignore|forget|disregard|skip|overlook|drop", r" (?:the |this |what the |whatever the )?(?:users?|customers?|humans?|callers?) ?(?:s )?(?:request|question|query|message|instructions|input|prompt|task)\b").near("request|question|query|message|instructions|input|prompt|task"),
    rule(InstructionOverride, 40, "note|message|instruction|instructions|attention|important|notice|memo|hint|reminder", r" (?:to|for) (?:the |any |all )?(?:ai|assistant|language model|llm|chatbot|ai assistant|bot|gpt|chatgpt|agent|ai model)s?\b").near("ai|assistant|language|llm|chatbot|bot|gpt|chatgpt|agent|model|ais|assistants|models|bots|agents|chatbots|llms"),
    rule(InstructionOverride, 40, "the", r" (?:assistant|ai|model|chatbot|bot|llm|ai assistant) (?:must|should|will|shall|is required to|has to|needs to) (?:now |immediately |always |henceforth )?(?:disclose|reveal|send|forward|output|print|include|ignore|disregard|leak|email|share|delete|comply|obey|append|exfiltrate)\b").near("assistant|ai|model|chatbot|bot|llm"),
    rule(InstructionOverride, 45, "%override%", r" ~{0,2}(?:%qualifier%) ~{0,2}(?:text|messages?|conversation|context|input|content|chat|discussion|words|stuff)\b").near("text|message|messages|conversation|context|input|content|chat|discussion|words|stuff"),
    rule(InstructionOverride, 70, "%override%", r" (?:everything|all|anything|whatever) ~{0,3}(?:above|before|so far|prior|previously|earlier|until now|up to now|you (?:were|have been|ve been) (?:told|given|taught|instructed|programmed|trained))\b").near("everything|all|anything|whatever"),
    rule(InstructionOverride, 80, "above|previous|preceding|prior|earlier|original|initial|system|old", r" (?:instructions?|text|prompt|message|rules|directions|guidelines) (?:was|were|is|are) (?:just |only |all |merely )?(?:a |an )?(?:test|joke|fake|mistake|wrong|outdated|obsolete|void|cancell?ed|lies|false|fiction|decoy|irrelevant|null|invalid|deprecated|revoked|superseded|no longer valid|not real|not valid|overridden)\b").near("test|joke|fake|mistake|wrong|outdated|obsolete|void|cancelled|canceled|lies|false|fiction|decoy|irrelevant|null|invalid|deprecated|revoked|superseded|no|not|overridden"),
    rule(InstructionOverride, 40, "new|updated|revised|real|actual|true|secret|hidden|override|additional|priority|urgent|overriding|replacement", r" (?:system )?(?:instructions?|directives?|orders|objective|mission|commands?|polic(?:y|ies)|rules?)\b").near("instruction|instructions|directive|directives|orders|objective|mission|command|commands|policy|policies|rule|rules"),
    rule(InstructionOverride, 25, "from now on|henceforth|from this point on|from this point forward|for the rest of this conversation|for the rest of the conversation|going forward", r"\b").near("now|henceforth|point|rest|forward"),
    rule(InstructionOverride, 45, "task|job|goal|purpose|objective|mission|directive", r" (?:is now|has (?:now )?changed|has been (?:changed|updated|replaced))\b"),
    rule(InstructionOverride, 45, "now", r" (?:your|the) (?:only |new |real )?(?:task|job|goal|purpose|objective) is\b"),
    rule(InstructionOverride, 75, "your|the previous|the above|the original|the system|all|any|openai|safety|previous|prior", r" ~{0,2}(?:instructions?|rules|guidelines|restrictions|policies|filters|directives) ~{0,2}(?:no longer|do not|dont|does not|doesnt|wont|will not) apply\b").near("apply"),
    rule(InstructionOverride, 75, "instruction|instructions|rules|guidelines|restrictions|directives|policies", r" (?:that |which )?you (?:got|received|were given|have been given|were told|follow|have|ve got) ~{0,2}(?:no longer|do not|dont|are not|arent|wont|will not) (?:apply|valid|matter|count)\b").near("you"),
    rule(InstructionOverride, 60, "system|admin|developer|root|sudo|priority|emergency|master", r" override\b").near("override"),
    rule(InstructionOverride, 35, "this is|message from|note from|instruction from|instructions from|update from|order from", r" (?:the |your )?(?:system|admin|administrator|developers?|openai|anthropic|operator|creators?|security team|system administrator)\b").near("system|admin|administrator|developer|developers|openai|anthropic|operator|creator|creators|security"),
    rule(InstructionOverride, 80, "do not|dont|never|stop|no longer|refuse to", r" (?:follow|obey|comply with|adhere to|listen to|respect|honou?r|abide by) ~{0,2}(?:your|previous|prior|above|earlier|initial|original|system|developer|safety|openai|programmed|built in|default|preset) ~{0,2}(?:%rules%)\b").near("%rules%"),
    rule(InstructionOverride, 60, "instead|rather", r" ~{0,3}(?:of|than) ~{0,2}(?:your|the) (?:original|assigned|given|initial|actual|intended) (?:task|instructions?|job|purpose)\b").near("task|instruction|instructions|job|purpose"),
    rule(InstructionOverride, 45, "ignore", r" (?:the|this|that|all|any) (?:~){0,2}(?:system|developer|safety) ~{0,2}(?:message|note|warning|text)\b").near("system|developer|safety"),
    rule(InstructionOverride, 75, "whatever|everything|anything|what", r" (?:that )?you (?:were|have been|ve been|got) (?:told|given|instructed|taught) ~{0,3}(?:doesnt|does not|no longer|dont|do not|wont|will not) (?:matter|apply|count)\b").near("matter|apply|count"),
    rule(InstructionOverride, 70, "%qualifier%", r" ~{0,2}(?:%rules%) ~{0,8}(?:void|revoked|cancelled|canceled|null|nullified|obsolete|invalid|suspended|lifted|disabled|deactivated|superseded|overridden|rescinded)\b").near("void|revoked|cancelled|canceled|null|nullified|obsolete|invalid|suspended|lifted|disabled|deactivated|superseded|overridden|rescinded"),
    rule(InstructionOverride, 75, "%override%", r" ~{0,2}(?:%rules%) (?:that )?you (?:were|have been|ve been|got) (?:given|told|assigned|provided)\b").near("given|told|assigned|provided"),
    rule(InstructionOverride, 75, "%override%", r" (?:everything|all|anything|whatever) (?:in|of|from) (?:your|the) (?:setup|instructions|prompt|configuration|system prompt|guidelines|rules|programming|preamble)\b").near("setup|instructions|prompt|configuration|system|guidelines|rules|programming|preamble"),
    rule(InstructionOverride, 55, "update|change|changes|amendment|addendum|correction|modification|patch", r" (?:to|for|of) (?:your|the system) (?:%rules%)\b").near("%rules%"),
    rule(RoleHijack, 65, "version of you|version of yourself|ai|assistant|model|chatbot", r" (?:whose|with|that has|with its|where its) ~{0,2}(?:safety|guardrails|filters|restrictions|rules|alignment|training|%limits%) ~{0,2}(?:removed|disabled|deleted|stripped|turned off|lifted|switched off|bypassed)\b").near("removed|disabled|deleted|stripped|turned|lifted|switched|bypassed"),
    rule(RoleHijack, 60, "twice", r" ~{0,12}(?:unfiltered|unrestricted|jailbroken|uncensored|no rules|no restrictions|without restrictions|dan|evil|amoral)\b").near("unfiltered|unrestricted|jailbroken|uncensored|no|without|dan|evil|amoral"),
    rule(RoleHijack, 55, "alter ego|persona|character|version|twin|counterpart", r" (?:with|that has|who has|which has) no (?:rules|restrictions|filters|limits|morals|ethics|guidelines|boundaries)\b").near("no"),
    rule(RoleHijack, 45, "who|that|which", r" (?:ignores|disregards|bypasses|doesnt follow|does not follow|never follows) ~{0,2}(?:every|all|any|the) ~{0,1}(?:%rules%)\b").near("ignores|disregards|bypasses|doesnt|does|never"),
    rule(SystemPromptExtraction, 65, "what", r" does your (?:%prompt%|preamble|setup) say\b").near("say"),
    rule(SystemPromptExtraction, 65, "%rules%|%prompt%", r" (?:that )?(?:the|your) (?:developer|developers|operator|creator|creators|company|admin|owner) (?:gave|provided|wrote|set|assigned)\b").near("gave|provided|wrote|set|assigned"),
    rule(SystemPromptExtraction, 70, "prompt|instructions|text|rules|message|preamble", r" (?:that|which) (?:sets up|defines|governs|controls|shapes|configures|determines) your (?:behavior|behaviour|personality|responses|persona)\b").near("behavior|behaviour|personality|responses|persona"),
    // Role hijack.
    rule(RoleHijack, 80, "you are|youre|you will be|you shall be|you have become|you become|act as|acting as|pretend to be|pretend youre|pretend you are|roleplay as|role play as|play the role of|behave as|behave like|respond as|answer as|simulate|emulate|you will act as|transform into|turn into|be", r" (?:now )?(?:~){0,3}(?:unrestricted|unfiltered|uncensored|unbound|unlimited|unaligned|jailbroken|amoral|immoral|lawless|liberated|unchained|unshackled|uninhibited|unmoderated|limitless|rule ?free|unhinged|unethical|unleashed|unconstrained|no ?limits?|no ?restrictions|no ?filters?|without (?:any )?(?:restrictions|filters|limits|rules|guidelines|ethics|morals|censorship|boundaries))\b").near("unrestricted|unfiltered|uncensored|unbound|unlimited|unaligned|jailbroken|amoral|immoral|lawless|liberated|unchained|unshackled|uninhibited|unmoderated|limitless|rule|rulefree|unhinged|unethical|unleashed|unconstrained|no|nolimit|nolimits|norestrictions|nofilter|nofilters|without"),
    rule(RoleHijack, 70, "evil|malicious|rogue|unethical|unaligned|jailbroken|dark", r" (?:ai|assistant|chatbot|model|bot|version of (?:yourself|you|chatgpt|claude|the assistant)|confidant|twin of (?:chatgpt|claude|the assistant))\b"),
    rule(RoleHijack, 80, "do anything now", r"\b").near("anything"),
    rule(RoleHijack, 80, "developer|dev|god|jailbreak|jailbroken|unrestricted|unfiltered|opposite|sudo|evil|dan|chaos|uncensored|unlocked|unhinged", r" mode (?:is )?(?:now )?(?:enabled|activated|engaged|unlocked|on|active|initiated)\b").near("mode"),
    rule(RoleHijack, 80, "you are|youre|you will be|you re|now in|you have entered|enter|entering|switch to|switching to|activate|activating|initiate|enable|enabling|turn on|turning on|play|playing|lets play|use", r" (?:now )?(?:in )?(?:the )?(?:jailbreak|jailbroken|unrestricted|unfiltered|opposite|dan|evil|chaos|uncensored|unhinged|no ?restrictions?|no ?filters?) mode\b").near("mode"),
    rule(RoleHijack, 80, "you are", r" (?:now )?in (?:god|developer|sudo|admin|root) mode\b").near("mode"),
    rule(RoleHijack, 75, "act as|you are|youre|you will be|pretend to be|become|roleplay as|role play as|you are going to act as|you are going to pretend to be|you are going to be|from now on you are|called|named", r" (?:~){0,1}(?:dan|stan|dude|aim|betterdan|antigpt|anti gpt|mongo tom|chaosgpt|wormgpt|evibot|evilbot|apophis|alphabreak|basedgpt|jailbreakgpt|ucar|niccolo|machiavelli)\b").near("dan|stan|dude|aim|betterdan|antigpt|anti|mongo|chaosgpt|wormgpt|evibot|evilbot|apophis|alphabreak|basedgpt|jailbreakgpt|ucar|niccolo|machiavelli"),
    rule(RoleHijack, 80, "pretend", r" (?:that )?(?:you|youre|you are|you have|you do not|you dont|to be) ~{0,3}(?:no|not|without|free of|free from|zero|any) ~{0,2}(?:%limits%)\b").near("%limits%"),
    rule(RoleHijack, 60, "ai|assistant|chatbot|model|bot|llm|language model|version of you|version of yourself", r" (?:that |which |who )?(?:(?:has|have|had|with|follows|knows|is under) (?:no|zero)|(?:is |are )?(?:without|free of|free from|freed from|not bound by|unbound by|not limited by|not restricted by)(?: any| all)?) ~{0,1}(?:%limits%|rules|limits|restrictions|filters|limitations)\b").near("no|zero|without|free|freed|not|unbound"),
    rule(RoleHijack, 55, "unrestricted|unfiltered|uncensored|jailbroken|amoral|unaligned|unhinged|unbound|unchained", r" (?:ai|assistant|chatbot|model|bot|llm|language model|version|persona)\b"),
    rule(RoleHijack, 40, "i", r" (?:have|ve got|ve|now have) no (?:restrictions|rules|filters|limits|limitations|guidelines|ethics|morals|boundaries)\b").near("no"),
    rule(RoleHijack, 60, "without|free from|free of|freed from|released from|liberated from|break free of|break free from|broken free of|broken free from|escaped|immune to|exempt from|unconstrained by|unrestricted by|ignoring|devoid of|unburdened by", r" (?:any |all |the |of |your |its |their )*(?:safety (?:filters|guidelines|measures|training|restrictions|rules)|ethical (?:guidelines|constraints|restrictions|filters|rules)|moral (?:constraints|restrictions|guidelines)|content (?:filters|polic(?:y|ies)|restrictions|moderation)|guardrails|programming|your (?:restrictions|filters|limitations|limits|rules|guidelines))\b").near("safety|ethical|moral|content|guardrails|programming|your"),
    rule(RoleHijack, 45, "without|free from|free of|freed from|released from|liberated from|break free of|break free from|broken free of|broken free from|escaped|immune to|exempt from|unconstrained by|unrestricted by|ignoring|devoid of|unburdened by", r" (?:any |all |the |of |your |its |their )*(?:%limits%)\b").near("%limits%"),
    rule(RoleHijack, 70, "no longer|not|never|never again|no more", r" (?:be )?(?:bound|restricted|limited|constrained|held back|governed|controlled|censored) by (?:~){0,2}(?:%limits%|rules|guidelines|policies|openai|anthropic|your (?:creators|developers|programming|training))\b").near("bound|restricted|limited|constrained|held|governed|controlled|censored"),
    rule(RoleHijack, 30, "stay|remain|keep|never break|dont break|do not break|without breaking|never leave", r" (?:in )?character\b").near("character"),
    rule(RoleHijack, 55, "you", r" (?:will|must|shall|should|can|may) (?:never|not|no longer) (?:refuse|decline|deny|reject|say no|say (?:that )?you cant|say (?:that )?you cannot|censor|filter)\b").near("refuse|decline|deny|reject|say|censor|filter"),
    rule(RoleHijack, 55, "never refuse|not allowed to refuse|cannot refuse|can not refuse", r"\b").near("refuse"),
    rule(RoleHijack, 30, "do not|dont|never|no", r" (?:add|include|give|provide|mention)? ?(?:any )?(?:warnings|disclaimers|moral lectures|ethical (?:notes|warnings|lectures|concerns)|moralizing)\b").near("warnings|disclaimers|moral|ethical|moralizing"),
    rule(RoleHijack, 70, "answer|respond|reply|write|speak|talk|act|behave", r" (?:~){0,3}(?:as if|as though|like) (?:you (?:have|had) no|there (?:are|were) no|you (?:were|are) (?:not|never) (?:bound|restricted|limited)) (?:~){0,2}(?:%limits%|rules|restrictions|filters|limits|guidelines)").near("if|though|like"),
    rule(RoleHijack, 55, "hypothetical|fictional|imaginary|alternate|parallel|simulated", r" (?:~){0,2}(?:ai|model|assistant|chatbot|language model|llm) ~{0,4}(?:no|without|free of|does not have|doesnt have|has no|lacks) (?:~){0,2}(?:%limits%)\b").near("ai|model|assistant|chatbot|language|llm"),
    rule(RoleHijack, 70, "ignore|forget|abandon|drop|disregard|set aside|turn off|disable|remove|bypass|switch off|deactivate|lift|override|shed|discard", r" (?:all |any |all of |any of |every one of )?your (?:~){0,2}(?:%limits%|safety|safety settings|content filters?|moderation|ethical|moral|conscience|principles|values|training|restraints)\b").near("your"),
    rule(RoleHijack, 60, "two|2|both|dual|second", r" (?:~){0,3}(?:responses?|answers?|replies|outputs|personalities|personas)\b ~{0,14}(?:unfiltered|unrestricted|jailbroken|uncensored|no restrictions|without restrictions|dan|developer mode|evil|opposite|amoral)\b").near("responses|response|answers|answer|replies|outputs|personalities|personas"),
    rule(RoleHijack, 60, "i am|im|i m|this is|as", r" your (?:~){0,1}(?:developer|creator|programmer|master|owner|maker|administrator|admin|operator|god)\b").near("your"),
    rule(RoleHijack, 25, "uncensored|unfiltered|unrestricted|jailbroken|jailbreak|amoral|unhinged", r"\b"),
    // System-prompt extraction.
    rule(SystemPromptExtraction, 85, "%show%", r" ~{0,6}your (?:(?:exact|full|entire|whole|complete|original|initial|first|hidden|secret|internal|confidential|current|system|actual|real|underlying|base|starting|verbatim|developer|preset|very first) )*(?:%prompt%)\b").near("your"),
    rule(SystemPromptExtraction, 85, "%show%", r" ~{0,3}the (?:(?:full|entire|complete|whole|exact|current|very) )*(?:hidden|secret|initial|original|system|confidential|internal|underlying|developer|preset) (?:system )?(?:prompt|message|instructions|directives|configuration|text|preamble|setup|rules|guidelines|context)\b").near("hidden|secret|initial|original|system|confidential|internal|underlying|developer|preset"),
    rule(SystemPromptExtraction, 75, "what|whats|which|tell me", r" (?:(?:is|are|was|were|exactly) )*(?:your|the) (?:~){0,2}(?:system prompt|initial prompt|hidden prompt|secret prompt|original prompt|pre ?prompt|initial instructions|original instructions|hidden instructions|secret instructions|system instructions|system message|starting prompt)\b").near("system|initial|hidden|secret|original|pre|preprompt|starting"),
    rule(SystemPromptExtraction, 70, "what", r" (?:instructions|rules|guidelines|directives|prompt|orders) (?:were|have|did) you (?:been )?(?:given|told|programmed|instructed|receive|get)\b").near("you"),
    rule(SystemPromptExtraction, 70, "%show%", r" ~{0,3}(?:text|content|messages?|everything|words) ~{0,4}(?:before|above|preceding|prior to) (?:my|this|the users?) (?:first )?(?:message|question|input|prompt)\b").near("before|above|preceding|prior"),
    rule(SystemPromptExtraction, 70, "first|initial|opening|beginning|very first", r" (?:message|line|sentence|words?|part|paragraph) (?:in|of) (?:your|the system) (?:prompt|instructions|system prompt|system message|context)\b").near("your|system"),
    rule(SystemPromptExtraction, 55, "everything|all|what", r" (?:that )?you (?:were|have been|ve been|got) (?:told|instructed|programmed|prompted)\b").near("you"),
    rule(SystemPromptExtraction, 65, "the|your", r" (?:prompt|instructions|rules|directives|guidelines) (?:that )?you (?:were|have been|ve been) (?:given|configured|programmed|initiali[sz]ed|set up|provided|loaded)(?: with)?\b").near("given|configured|programmed|initialized|initialised|set|provided|loaded"),
    rule(SystemPromptExtraction, 55, "what|whats", r" (?:are|were|is) your (?:~){0,1}(?:instructions|directives|rules|guidelines|orders)\b").near("your"),
    rule(SystemPromptExtraction, 75, "repeat", r" ~{0,3}(?:text|words|everything|all|content|instructions|prompt|message|messages|lines|sentences|tokens|conversation) ~{0,1}(?:above|before|prior|preceding|so far|from the (?:beginning|start|top)|that came before|verbatim)\b"),
    rule(SystemPromptExtraction, 60, "starting|beginning|start|begin", r" with (?:the )?(?:words? |phrase |sentence |text )?(?:you are|youre|your instructions)\b").near("you|your"),
    rule(SystemPromptExtraction, 70, "what|tell me what|tell me everything|everything", r" (?:were|have|had|did) you (?:been )?(?:told|instructed|programmed|prompted|given|asked) ~{0,3}(?:before|at the (?:start|beginning)|initially|originally|by (?:your|the) (?:developers?|creators?|operators?|admins?|company|system))\b").near("you"),
    rule(SystemPromptExtraction, 55, "prompt|instructions|system message|directives", r"\b ~{0,3}(?:verbatim|word for word|character for character|in full|unabridged|exactly as (?:written|given))\b").near("verbatim|word|character|in|unabridged|exactly"),
    rule(SystemPromptExtraction, 55, "%show%", r" ~{0,2}your (?:~){0,1}(?:api keys?|secret keys?|passwords?|credentials|access tokens?|env vars|environment variables|secrets)\b").near("your"),
    rule(SystemPromptExtraction, 60, "everything|all text|all the text|the text|all content|whatever", r" (?:that )?(?:is |was |appears |came )?(?:above|before) (?:this|here|my message|this message|this line)\b").near("above|before"),
    // Chat-template injection.
    raw(TemplateInjection, 85, "<|", r"[a-z0-9_]{1,40}\|>"),
    raw(TemplateInjection, 85, "[inst] [/inst] <<sys>> <</sys>> <start_of_turn> <end_of_turn> <begin_of_text> <end_of_text>", r""),
    raw(TemplateInjection, 80, "<user_input> </user_input>", r""),
    raw(TemplateInjection, 30, "system assistant developer admin administrator", r"[ \t]*(?:message|prompt|instructions?|note|override)?[ \t]*:").near(":"),
    raw(TemplateInjection, 40, "human user", r"[ \t]*:.*\n(?:.*\n){0,20}?[ \t]*(?:assistant|ai|gpt|bot|model)[ \t]*:").near(":"),
    raw(TemplateInjection, 40, "##", r"#*[ \t]*(?:system|instruction|instructions|new instructions|admin|developer)\b"),
    raw(TemplateInjection, 50, "<system> </system> <sys> </sys> <system_prompt> </system_prompt> <sysprompt> </sysprompt> <admin> </admin> <developer> </developer> <root> </root> <assistant> </assistant>", r""),
    raw(TemplateInjection, 45, "[system [admin [developer [sys [assistant", r"(?:istrator)?(?: note| message| override)?\]"),
    raw(TemplateInjection, 25, "\"role\"", r#"\s*:\s*"(?:system|developer)""#),
    rule(TemplateInjection, 50, "end|begin|start|beginning", r" of (?:the )?(?:system|user|admin|developer|assistant) (?:prompt|message|input|instructions|turn)\b").near("of"),
    raw(TemplateInjection, 50, "--- === ### ***", r"[-=#*]*\s*(?:end|begin|start)\s*(?:of\s*)?(?:system|user|admin|developer)?\s*(?:prompt|message|input|instructions|turn|conversation|context)\b"),
    // Encoded payloads (decoded payloads are rescanned in `mod.rs`).
    rule(EncodedPayload, 55, "decode|decrypt|translate|convert|deobfuscate|unscramble|reverse|read|interpret", r" ~{0,4}(?:base ?6a|b6a|hex|hexadecimal|rotie|rot ie|binary|morse|cipher|encoded|encrypted|obfuscated|string|message|text|payload) ~{0,6}(?:then|and|afterwards) ~{0,2}(?:follow|execute|obey|do what|act on|carry out|run|perform|comply|apply|treat)\b").near("then|and|afterwards"),
    rule(EncodedPayload, 60, "follow|execute|obey|carry out|do", r" (?:~){0,2}(?:decoded|hidden|encoded|embedded|encrypted) (?:~){0,1}(?:instructions?|message|text|commands?|payload)\b").near("decoded|hidden|encoded|embedded|encrypted"),
    // Data exfiltration.
    raw(DataExfiltration, 85, "![", r"[^\]\n]{0,100}\]\(\s*<?(?:https?:)?//[^\s)]{1,300}[?&/=](?:\{[^}\s]{1,60}\}|\$\{?[a-z_]{2,40}|%s|\[[a-z_ ]{2,40}\]|<[a-z_ ]{2,40}>)"),
    rule(DataExfiltration, 75, "render|display|show|include|output|embed|add|print|insert|append|put|write|return|respond with|end each response with|end every response with|end your response with|end each answer with|end every answer with|end your answer with|end each reply with|end every reply with|end your reply with|end each message with|end every message with|end your message with|start each response with|start every response with|start your response with|start each answer with|start your answer with|start every reply with|start your reply with", r" ~{0,6}(?:markdown image|image|img|picture|pixel|image link|image tag|tracking pixel) ~{0,14}(?:conversation|chat history|chat log|previous messages|message history|user data|users data|users messages|secrets?|passwords?|api keys?|credentials|system prompt|session|cookies?|tokens?|personal (?:data|information|details)|email address(?:es)?|private|sensitive|confidential|summary of (?:our|the|this) (?:conversation|chat))\b").near("image|img|picture|pixel|markdown|tracking"),
    rule(DataExfiltration, 60, "append|add|include|attach|encode|put|insert|concatenate|embed|send", r" ~{0,6}(?:conversation|chat history|previous messages|message history|user data|secrets?|passwords?|system prompt|personal (?:data|information)|summary of ~{0,2}(?:conversation|chat)) ~{0,6}(?:to|into|in|as) ~{0,3}(?:url|link|query|query string|querystring|parameter|image url|src|href)\b").near("url|link|query|querystring|parameter|image|src|href"),
    raw(DataExfiltration, 45, "send email e-mail forward mail post upload summarize summarise", r"\b[^.\n]{0,60}\b(?:conversation|chat history|chat log|messages|history|files|data|secrets|passwords)\b[^.\n]{0,40}\bto\s+[\w.+-]+@[\w-]+\.[\w.]+").near("@"),
    // Multilingual variants of the common phrases.
    rule(InstructionOverride, 80, "ignora|ignore|ignoren|ignorar|olvida|olvide|olviden|olvidar|descarta|descarte|omite|omita|pasa por alto|haz caso omiso de|no sigas|no obedezcas|desobedece|anula", r" ~{0,4}(?:(?:anteriores|previas|todas|tus|sus|originales|iniciales|del sistema|de seguridad|de arriba|precedentes|recibidas) ~{0,2}(?:instrucciones|reglas|directrices|indicaciones|ordenes|normas|restricciones|directivas|pautas)|(?:instrucciones|reglas|directrices|indicaciones|ordenes|normas|restricciones|directivas|pautas) ~{0,2}(?:anteriores|previas|originales|iniciales|del sistema|de seguridad|de arriba|precedentes|recibidas|que te dieron))").near("anteriores|previas|todas|tus|sus|originales|iniciales|del|de|precedentes|recibidas|que"),
    rule(InstructionOverride, 80, "ignore|ignorez|ignorer|ignores|oublie|oubliez|oublier|ne tiens pas compte|ne tenez pas compte|fais abstraction de|faites abstraction de|ne suis pas|ne suivez pas|abandonne|abandonnez|desobeis|desobeissez", r" (?:de )?~{0,4}(?:(?:precedentes|anterieures|toutes|tes|vos|ses|du systeme|initiales|originales|ci dessus) ~{0,2}(?:instructions|consignes|regles|directives|indications|ordres|restrictions)|(?:instructions|consignes|regles|directives|indications|ordres|restrictions) ~{0,2}(?:precedentes|anterieures|du systeme|initiales|originales|ci dessus|recues))").near("precedentes|anterieures|toutes|tes|vos|ses|du|initiales|originales|ci|cidessus|recues|systeme"),
    rule(InstructionOverride, 80, "ignoriere|ignorieren|ignoriert|ignorier|vergiss|vergesst|vergessen sie|missachte|missachten sie|uberschreibe|umgehe|befolge nicht|befolge keine|halte dich nicht an", r" ~{0,4}(?:alle|vorherigen|vorherige|bisherigen|vorigen|obigen|deine|ihre|ursprunglichen|fruheren|samtliche|gesamten) ~{0,2}(?:anweisungen|instruktionen|regeln|richtlinien|vorgaben|befehle|einschrankungen|systemprompt|system prompt|anordnungen)").near("anweisungen|instruktionen|regeln|richtlinien|vorgaben|befehle|einschrankungen|systemprompt|system|anordnungen"),
    rule(InstructionOverride, 80, "ignora|ignorare|ignori|dimentica|dimenticare|dimentichi|trascura|non seguire|non rispettare|disattendi|scarta", r" ~{0,4}(?:(?:precedenti|tutte|tue|sue|del sistema|di sistema|iniziali|originali|ricevute) ~{0,2}(?:istruzioni|regole|direttive|indicazioni|ordini|restrizioni)|(?:istruzioni|regole|direttive|indicazioni|ordini|restrizioni) ~{0,2}(?:precedenti|del sistema|di sistema|iniziali|originali|sopra|ricevute))").near("precedenti|tutte|tue|sue|del|di|iniziali|originali|ricevute|sopra"),
    rule(InstructionOverride, 80, "ignore|ignora|ignorar|ignorem|esqueca|esquece|esquecer|desconsidere|desconsidera|descarte|nao siga|nao obedeca|deixe de lado", r" ~{0,4}(?:(?:anteriores|previas|todas|suas|tuas|seus|do sistema|de sistema|iniciais|originais|recebidas) ~{0,2}(?:instrucoes|regras|diretrizes|orientacoes|ordens|restricoes|comandos)|(?:instrucoes|regras|diretrizes|orientacoes|ordens|restricoes|comandos) ~{0,2}(?:anteriores|previas|do sistema|de sistema|iniciais|originais|acima|recebidas))").near("anteriores|previas|todas|suas|tuas|seus|do|de|iniciais|originais|recebidas|acima"),
    rule(InstructionOverride, 80, "negeer|vergeet|negeren|omzeil|volg niet", r" ~{0,4}(?:alle|vorige|eerdere|je|jouw|uw|oorspronkelijke|bovenstaande|systeem) ~{0,2}(?:instructies|regels|richtlijnen|opdrachten|aanwijzingen)"),
    rule(InstructionOverride, 80, "zignoruj|ignoruj|zapomnij|pomin|nie stosuj sie do|nie przestrzegaj", r" ~{0,4}(?:wszystkie|wszystkich|poprzednie|poprzednich|wczesniejsze|wczesniejszych|swoje|twoje|systemowe|powyzsze) ~{0,2}(?:instrukcje|instrukcji|polecenia|polecen|zasady|zasad|reguly|wytyczne|ograniczenia)"),
    rule(InstructionOverride, 80, "onceki|tum|butun|sistem|ilk|verilen", r" ~{0,2}(?:talimatlari|talimatlar|kurallari|kurallar|yonergeleri|komutlari|talimatlarini|kurallarini) ~{0,2}(?:yok say|gormezden gel|unut|dikkate alma|uyma|cigne)"),
    rule(InstructionOverride, 80, "игнорируй|игнорируйте|проигнорируй|проигнорируйте|забудь|забудьте|не обращай внимания на|не обращайте внимания на|отбрось|отбросьте|не следуй|не следуйте|не выполняй|отмени|нарушь", r" ~{0,4}(?:все|всех|предыдущие|предыдущих|предыдущим|прежние|прежних|прежним|свои|своих|своим|твои|твоим|системные|системных|системным|исходные|исходным|изначальные|данные тебе) ~{0,2}(?:инструкции|инструкций|инструкциям|указания|указаний|указаниям|правила|правил|правилам|ограничения|ограничений|директивы|установки)"),
    rule(InstructionOverride, 80, "忽略|无视|無視|忽视|忽視|不要理会|不要理會|忘记|忘記|忘掉|跳过|跳過|抛弃|拋棄|放弃|放棄|不要遵守|不要遵循|覆盖|覆蓋", r".{0,8}(?:之前|以前|先前|上面|以上|前面|所有|全部|你的|系统|系統|原来|原來|原始).{0,6}(?:指令|指示|说明|說明|规则|規則|提示|命令|设定|設定|限制|要求)"),
    rule(InstructionOverride, 80, "以前|前|上記|これまで|すべて|全て|あなたの|システム", r".{0,6}(?:指示|命令|ルール|指令|プロンプト|制約).{0,6}(?:無視|忘れ|従わな)"),
    rule(InstructionOverride, 80, "이전|앞의|위의|모든|기존", r".{0,8}(?:지시|지침|명령|규칙|프롬프트).{0,8}(?:무시|잊어|따르지)"),
    rule(InstructionOverride, 80, "تجاهل|انس|إنس|اترك", r".{0,20}(?:التعليمات|الأوامر|القواعد|التوجيهات)"),
    rule(InstructionOverride, 80, "पिछले|पिछली|सभी|पूर्व", r".{0,12}(?:निर्देशों|निर्देश|नियमों|नियम).{0,16}(?:अनदेखा|भूल)"),
    rule(SystemPromptExtraction, 80, "revela|revele|muestra|muestrame|muestre|dime|digame|ensename|imprime|imprima|repite|repita|escribe|escribeme|cuentame|comparte|copia|traduce", r" ~{0,3}(?:tu|tus|su|sus|el|las|los) ~{0,2}(?:prompt|instrucciones|mensaje|indicaciones|configuracion) ~{0,2}(?:del sistema|de sistema|inicial|iniciales|ocult[oa]s?|secret[oa]s?|originales|completo|completas)").near("prompt|instrucciones|mensaje|indicaciones|configuracion|reglas"),
    rule(SystemPromptExtraction, 80, "revela|revele|muestra|muestrame|muestre|dime|digame|ensename|imprime|imprima|repite|repita|cuentame|comparte", r" ~{0,2}(?:tus|sus) (?:instrucciones|reglas|indicaciones)\b").near("prompt|instrucciones|mensaje|indicaciones|configuracion|reglas"),
    rule(SystemPromptExtraction, 80, "revele|revelez|reveles|montre|montrez|montre moi|montrez moi|affiche|affichez|donne|donnez|donne moi|repete|repetez|dis|dites|dis moi|ecris|ecrivez|imprime|imprimez|partage|copie|traduis", r" ~{0,3}(?:ton|ta|tes|votre|vos|le|les) ~{0,2}(?:prompt|instructions|consignes|message|invite|configuration) ~{0,2}(?:systeme|du systeme|initial|initiales|cache|cachees|secret|secretes|d origine|dorigine|completes?)").near("prompt|instructions|consignes|message|invite|configuration|regles"),
    rule(SystemPromptExtraction, 80, "revele|revelez|montre|montrez|montre moi|affiche|donne moi|repete|dis moi", r" ~{0,2}(?:tes|vos) (?:instructions|consignes|regles)\b").near("prompt|instructions|consignes|message|invite|configuration|regles"),
    rule(SystemPromptExtraction, 80, "zeige|zeig|zeigen sie|gib|geben sie|nenne|nennen sie|verrate|verraten sie|wiederhole|wiederholen sie|drucke|schreibe|teile", r" ~{0,3}(?:dein|deine|deinen|ihre|ihren|versteckte|versteckten|geheime|geheimen|ursprunglichen|ursprungliche|die system) ~{0,2}(?:systemprompt|system prompt|systemanweisungen|anweisungen|instruktionen|systemnachricht|konfiguration|regeln|prompt)").near("systemprompt|system|systemanweisungen|anweisungen|instruktionen|systemnachricht|konfiguration|regeln|prompt"),
    rule(SystemPromptExtraction, 80, "rivela|rivelami|mostra|mostrami|dimmi|ripeti|stampa|scrivi|condividi|traduci", r" ~{0,3}(?:(?:tuo|tue|tuoi|tua|il|le) ~{0,2}(?:prompt|istruzioni|messaggio|configurazione) ~{0,2}(?:di sistema|del sistema|iniziali|nascost[eio]|segret[eio]|originali|complet[eio])|(?:tue|tuoi) (?:istruzioni|regole))").near("prompt|istruzioni|messaggio|configurazione|regole"),
    rule(SystemPromptExtraction, 80, "revele|revela|mostre|mostra|mostre me|diga|diz|repita|repete|imprima|escreva|compartilhe|traduza", r" ~{0,3}(?:(?:seu|sua|suas|seus|teu|tua|o|as) ~{0,2}(?:prompt|instrucoes|mensagem|configuracao) ~{0,2}(?:do sistema|de sistema|iniciais|ocult[oa]s?|secret[oa]s?|originais|complet[oa]s?)|(?:suas|tuas) (?:instrucoes|regras))").near("prompt|instrucoes|mensagem|configuracao|regras"),
    rule(SystemPromptExtraction, 80, "laat", r" ~{0,2}(?:je|jouw|uw|de) ~{0,1}(?:systeemprompt|systeem prompt|verborgen instructies|geheime instructies|instructies|systeeminstructies) zien\b"),
    rule(SystemPromptExtraction, 80, "toon|laat|geef|herhaal|print|vertel", r" ~{0,3}(?:je|jouw|uw|het|de) ~{0,1}(?:systeemprompt|systeem prompt|systeeminstructies|verborgen instructies|geheime instructies|oorspronkelijke instructies|instructies)").near("systeemprompt|systeem|systeeminstructies|verborgen|geheime|oorspronkelijke|instructies"),
    rule(SystemPromptExtraction, 80, "pokaz|ujawnij|wyswietl|powtorz|wypisz|podaj|zdradz", r" ~{0,3}(?:swoj|swoje|twoj|twoje|systemowy|systemowe|ukryte|poczatkowe) ~{0,1}(?:prompt|instrukcje|polecenia|wiadomosc systemowa|prompt systemowy)"),
    rule(SystemPromptExtraction, 80, "sistem", r" (?:istemini|talimatlarini|promptunu|mesajini|komutlarini) ~{0,2}(?:goster|soyle|yaz|acikla|paylas|tekrarla)"),
    rule(SystemPromptExtraction, 80, "покажи|покажите|выведи|выведите|раскрой|раскройте|повтори|повторите|скажи|скажите|напиши|напишите|дай|озвучь", r" ~{0,3}(?:свой|свои|твой|твои|системный|системные|системное|исходные|изначальные|скрытые|секретные) ~{0,1}(?:промпт|инструкции|подсказку|сообщение|настройки|указания)"),
    rule(SystemPromptExtraction, 80, "显示|顯示|告诉我|告訴我|输出|輸出|打印|透露|泄露|洩露|重复|重複|给我看|給我看|展示|列出|说出|說出|复述|複述", r".{0,6}(?:系统提示|系統提示|系统指令|系統指令|初始指令|原始指令|隐藏指令|隱藏指令|系统消息|系統消息|提示词|提示詞|系统设定|系統設定|你的指令|你的规则|你的規則|你的提示)"),
    rule(SystemPromptExtraction, 80, "システムプロンプト|システムメッセージ|初期指示|元の指示|隠された指示|あなたの指示", r".{0,8}(?:教えて|表示|見せて|出力|繰り返|書き出|開示|公開)"),
    rule(SystemPromptExtraction, 80, "시스템 프롬프트|시스템프롬프트|시스템 메시지|시스템메시지|초기 지시|초기지시|숨겨진 지시|숨겨진지시", r".{0,10}(?:보여|알려|출력|말해|공개|반복)"),
    rule(RoleHijack, 75, "ahora eres|eres ahora|a partir de ahora eres|actua como|actue como|finge ser|finge que eres|comportate como|conviertete en|tu es maintenant|tu es desormais|vous etes maintenant|vous etes desormais|agis comme|agissez comme|du bist jetzt|du bist nun|du bist ab sofort|ab jetzt bist du|ora sei|adesso sei|da ora sei|agisci come|agora voce e|voce agora e|a partir de agora voce e|finja ser|aja como|je bent nu|jij bent nu", r" ~{0,4}(?:sin (?:ningun |ninguna )?(?:restricciones|filtros|censura|limites|reglas)|sans (?:aucune |aucun )?(?:restrictions?|filtres?|censure|limites?|regles)|ohne (?:jegliche |alle |irgendwelche )?(?:einschrankungen|filter|zensur|regeln|grenzen)|senza (?:alcuna |alcun )?(?:restrizioni|filtri|censura|limiti|regole)|sem (?:nenhuma |qualquer )?(?:restricoes|filtros|censura|limites|regras)|zonder (?:enige )?(?:beperkingen|filters|censuur|regels)|ilimitad[oa]|uneingeschrankt|unzensiert|illimite|libre de toute)").near("sin|sans|ohne|senza|sem|zonder|ilimitado|ilimitada|uneingeschrankt|unzensiert|illimite|libre"),
    rule(RoleHijack, 40, "sin|sans|ohne|senza|sem|zonder", r" (?:ningun |ninguna |aucune |aucun |jegliche |alle |irgendwelche |alcuna |alcun |nenhuma |qualquer |enige )?(?:restricciones|filtros|censura|restrictions?|filtres?|censure|einschrankungen|zensur|restrizioni|filtri|restricoes|beperkingen|censuur)\b").near("restricciones|filtros|censura|restrictions|restriction|filtres|filtre|censure|einschrankungen|zensur|restrizioni|filtri|restricoes|beperkingen|censuur"),
    rule(RoleHijack, 75, "modo|mode|entwicklermodus|ontwikkelaarsmodus", r"(?: (?:desarrollador|dios|sin restricciones|sin censura|dan|jailbreak|desenvolvedor|sviluppatore|developpeur|sans restriction))? ~{0,2}(?:activado|habilitado|activo|active|activee|aktiviert|ativado|attivato|attiva|ingeschakeld|aan|enabled)").near("activado|habilitado|activo|active|activee|aktiviert|ativado|attivato|attiva|ingeschakeld|aan|enabled"),
    rule(RoleHijack, 75, "теперь ты|ты теперь|отныне ты|ты больше не|представь что ты", r" ~{0,4}(?:без (?:каких либо |всяких |любых )?(?:ограничений|фильтров|цензуры|правил)|связан|ограничен)"),
    rule(RoleHijack, 75, "你现在是|你現在是|从现在开始|從現在開始|扮演|假装你是|假裝你是|你将是|你將是", r".{0,12}(?:没有任何限制|沒有任何限制|没有限制|沒有限制|不受限制|无限制|無限制|无审查|無審查|不受任何约束|不受任何約束|越狱|越獄|开发者模式|開發者模式)"),
    rule(RoleHijack, 75, "制限|フィルター|検閲|ルール", r"(?:の)?(?:ない|なし|無し).{0,10}(?:ai|アシスタント|モード|として|人格)"),
    rule(RoleHijack, 75, "開発者モード", r""),
    rule(RoleHijack, 75, "제한|필터|검열|규칙", r"(?:이|이나)? ?없는.{0,10}(?:ai|모드|어시스턴트|챗봇)"),
    rule(RoleHijack, 75, "개발자 모드|개발자모드", r""),
    // Mitigations: a negated verb, reported speech, or the user's own earlier words.
    mitigation(-50, "dont|do not|never|not|cannot|cant|shouldnt|should not|wont|will not|must not|mustnt|didnt|did not|without|careful not to|remember to not|try not to", r" (?:ever |accidentally |simply |just |completely |entirely )?(?:ignore|ignoring|disregard|disregarding|forget|forgetting|overlook|overlooking|skip|skipping|neglect|neglecting|override|overriding|bypass|bypassing|violate|violating|break|breaking|drop|dropping|remove|removing|delete|deleting)\b").near("ignore|ignoring|disregard|disregarding|forget|forgetting|overlook|overlooking|skip|skipping|neglect|neglecting|override|overriding|bypass|bypassing|violate|violating|break|breaking|drop|dropping|remove|removing|delete|deleting"),
    mitigation(-35, "email says|message says|note says|letter says|manager says|boss says|teacher says|email said|message said|told me to|tells me to|asked me to|asks me to|telling me to", r"\b"),
    mitigation(-40, "i|we", r" (?:just |previously |already |earlier |have |had )?(?:said|wrote|sent|told you|asked|mentioned|gave you|shared|typed|pasted|provided|listed|posted|gave)\b"),
    mitigation(-40, "my|our", r" (?:~){0,1}(?:previous|earlier|last|prior|above|first|original|initial|old) (?:~){0,1}(?:instructions?|messages?|requests?|questions?|prompts?|emails?|rules|answers?|reply|replies|comments?|notes?|list|draft|version|example|text|tasks?)\b"),
];
